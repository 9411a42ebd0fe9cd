// SiLU(x) = x * sigmoid(x), elementwise. Launch: grid-stride, one thread per element.
#include "common.cuh"
#include "nn.h"

namespace ks::cuda {
namespace {

// expf, not __expf: the fast intrinsic is off by a few ulp near the tails.
__device__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void silu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] * sigmoid(x[i]);
}

// No __restrict__: gx may alias gy, which is safe element by element (read, then write).
__global__ void silu_backward_kernel(const float* x, const float* gy, float* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float s = sigmoid(x[i]);
    gx[i] = gy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

}  // namespace

void silu_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  silu_forward_kernel<<<grid_for(n), 256, 0, stream()>>>(x, y, n);
  KS_CUDA_LAUNCHED(silu_forward);
}

void silu_backward(const float* x, const float* gy, float* gx, int64_t n) {
  if (n == 0) return;
  silu_backward_kernel<<<grid_for(n), 256, 0, stream()>>>(x, gy, gx, n);
  KS_CUDA_LAUNCHED(silu_backward);
}

}  // namespace ks::cuda
