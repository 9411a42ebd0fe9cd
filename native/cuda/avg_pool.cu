// A: the r×r block mean, one thread per output value (summed in the CPU's order: the same bits).
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void avg_pool_kernel(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h / r, ow = w / r, total = planes * oh * ow;
  const float area = static_cast<float>(r * r);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / ow, ox = i % ow;
    const float* src = x + (row / oh * h + row % oh * r) * w + ox * r;
    float acc = 0;
    for (int dy = 0; dy < r; ++dy)
      for (int dx = 0; dx < r; ++dx) acc += src[dy * w + dx];
    out[i] = acc / area;
  }
}
}  // namespace

void avg_pool(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t total = planes * (h / r) * (w / r);
  avg_pool_kernel<<<grid_for(total), 256, 0, stream()>>>(x, out, planes, h, w, r);
  KS_CUDA_LAUNCHED(avg_pool);
}

}  // namespace ks::cuda
