#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
// No __restrict__: out may alias an input (in-place ops), which is safe element by element.
namespace {
__global__ void scale_kernel(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = s * a[i];
}
}  // namespace

void scale(const float* a, float s, float* out, int64_t n) {
  scale_kernel<<<grid_for(n), 256, 0, stream()>>>(a, s, out, n);
  KS_CUDA_LAUNCHED(scale);
}

}  // namespace ks::cuda
