// Elementwise product: the mask operators (H = diag(m)) and projections onto observed coordinates.
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void mul_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] * b[i];
}
}  // namespace

void mul(const float* a, const float* b, float* out, int64_t n) {
  mul_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, out, n);
  KS_CUDA_LAUNCHED(mul);
}

}  // namespace ks::cuda
