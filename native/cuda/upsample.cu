// Nearest-neighbour upsampling by 2 over [planes, h, w] (h, w: the input's size).
#include "common.cuh"
#include "nn.h"

namespace ks::cuda {
namespace {

// Launch: grid-stride, one thread per output element i = (plane, y, x) of [planes, 2h, 2w].
__global__ void upsample2_forward_kernel(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t w2 = 2 * w, count = planes * 4 * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = i % w2, row = i / w2;  // row = plane * 2h + y
    const int64_t plane = row / (2 * h), yy = row % (2 * h);
    y[i] = x[(plane * h + yy / 2) * w + col / 2];
  }
}

// Launch: grid-stride, one thread per input element i = (plane, y, x) of [planes, h, w]; adds its four
// copies in the reference's order, so the result is bit-identical to it.
__global__ void upsample2_backward_kernel(const float* gy, float* gx, int64_t planes, int64_t h, int64_t w) {
  const int64_t count = planes * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = i % w, row = i / w;               // row = plane * h + y
    const float* g = gy + (2 * row) * (2 * w) + 2 * col;  // (plane * 2h + 2y) * 2w + 2x
    gx[i] = g[0] + g[1] + g[2 * w] + g[2 * w + 1];
  }
}

}  // namespace

void upsample2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t count = planes * 4 * h * w;
  if (count == 0) return;
  upsample2_forward_kernel<<<grid_for(count), 256, 0, stream()>>>(x, y, planes, h, w);
  KS_CUDA_LAUNCHED(upsample2_forward);
}

void upsample2_backward(const float* gy, float* gx, int64_t planes, int64_t h, int64_t w) {
  const int64_t count = planes * h * w;
  if (count == 0) return;
  upsample2_backward_kernel<<<grid_for(count), 256, 0, stream()>>>(gy, gx, planes, h, w);
  KS_CUDA_LAUNCHED(upsample2_backward);
}

}  // namespace ks::cuda
