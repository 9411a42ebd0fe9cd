// H = I − U A: one thread per r×r block, which reads the block once for its mean and writes it back
// less the mean (in place is allowed: each thread reads only what it writes).
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void high_pass_kernel(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h / r, ow = w / r, total = planes * oh * ow;
  const float area = static_cast<float>(r * r);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / ow, ox = i % ow;
    const int64_t base = (row / oh * h + row % oh * r) * w + ox * r;
    float acc = 0;
    for (int dy = 0; dy < r; ++dy)
      for (int dx = 0; dx < r; ++dx) acc += x[base + dy * w + dx];
    const float mean = acc / area;
    for (int dy = 0; dy < r; ++dy)
      for (int dx = 0; dx < r; ++dx) out[base + dy * w + dx] = x[base + dy * w + dx] - mean;
  }
}
}  // namespace

void high_pass(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t total = planes * (h / r) * (w / r);
  high_pass_kernel<<<grid_for(total), 256, 0, stream()>>>(x, out, planes, h, w, r);
  KS_CUDA_LAUNCHED(high_pass);
}

}  // namespace ks::cuda
