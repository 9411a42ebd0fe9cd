#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
// No __restrict__: out may alias an input (in-place ops), which is safe element by element.
namespace {
__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}
}  // namespace

void add(const float* a, const float* b, float* out, int64_t n) {
  add_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, out, n);
  KS_CUDA_LAUNCHED(add);
}

}  // namespace ks::cuda
