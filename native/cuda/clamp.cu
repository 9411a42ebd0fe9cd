#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
// Comparisons, not fminf/fmaxf: those would turn NaN into a bound; the CPU keeps NaN.
__global__ void clamp_kernel(const float* a, float low, float high, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = a[i];
    out[i] = v < low ? low : (v > high ? high : v);
  }
}
}  // namespace

void clamp(const float* a, float low, float high, float* out, int64_t n) {
  clamp_kernel<<<grid_for(n), 256, 0, stream()>>>(a, low, high, out, n);
  KS_CUDA_LAUNCHED(clamp);
}

}  // namespace ks::cuda
