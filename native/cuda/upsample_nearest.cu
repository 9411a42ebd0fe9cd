// U: nearest upsampling by r, one thread per output value.
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void upsample_nearest_kernel(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h * r, ow = w * r, total = planes * oh * ow;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / ow, ox = i % ow;
    out[i] = x[(row / oh * h + row % oh / r) * w + ox / r];
  }
}
}  // namespace

void upsample_nearest(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t total = planes * h * r * w * r;
  upsample_nearest_kernel<<<grid_for(total), 256, 0, stream()>>>(x, out, planes, h, w, r);
  KS_CUDA_LAUNCHED(upsample_nearest);
}

}  // namespace ks::cuda
