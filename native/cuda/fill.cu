#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void fill_kernel(float* out, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = value;
}
}  // namespace

void fill(float* out, int64_t n, float value) {
  fill_kernel<<<grid_for(n), 256, 0, stream()>>>(out, n, value);
  KS_CUDA_LAUNCHED(fill);
}

}  // namespace ks::cuda
