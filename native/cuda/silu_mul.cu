// out = silu(a) * b elementwise (cpu/silu_mul.cpp). Launch: grid-stride, one thread per element; out
// may alias a or b (each element is read before it is written).
#include "common.cuh"
#include "nn.h"

namespace ks::cuda {
namespace {

__global__ void silu_mul_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

}  // namespace

void silu_mul(const float* a, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  silu_mul_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, out, n);
  KS_CUDA_LAUNCHED(silu_mul);
}

}  // namespace ks::cuda
