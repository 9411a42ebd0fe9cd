// Block averaging by k in its SVD basis: the Helmert transform of each k x k block, one thread per
// block, the same running sums as native/cpu/block_average.cpp (which documents the layout).
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {

__global__ void block_average_vt_kernel(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int k,
                                        int64_t coefs, float scale) {
  const int64_t W = w * k, hw = h * w, m = int64_t(k) * k, total = planes * hw;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = t / hw, bi = (t % hw) / w, bj = t % w;
    const float* blk = x + p * hw * m + bi * k * W + bj * k;
    float* o = out + p * hw * coefs + bi * w + bj;
    float prefix = 0;
    for (int64_t j = 0; j < m; ++j) {
      const float a = blk[(j / k) * W + j % k];
      if (j > 0 && j < coefs) o[j * hw] = scale * (prefix - float(j) * a) / sqrtf(float(j * (j + 1)));
      prefix += a;
    }
    o[0] = scale * prefix / float(k);
  }
}

__global__ void block_average_v_kernel(const float* c, float* out, int64_t planes, int64_t h, int64_t w, int k,
                                       int64_t coefs, float scale) {
  const int64_t W = w * k, hw = h * w, m = int64_t(k) * k, total = planes * hw;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = t / hw, bi = (t % hw) / w, bj = t % w;
    const float* cf = c + p * hw * coefs + bi * w + bj;
    float* blk = out + p * hw * m + bi * k * W + bj * k;
    const float mean = cf[0] / float(k);
    float suffix = 0;
    for (int64_t i = m - 1; i >= 0; --i) {
      float a = mean + suffix;
      if (i > 0 && i < coefs) {
        const float ci = cf[i * hw] / sqrtf(float(i * (i + 1)));
        a -= float(i) * ci;
        suffix += ci;
      }
      blk[(i / k) * W + i % k] = scale * a;
    }
  }
}

}  // namespace

void block_average_vt(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs,
                      float scale) {
  block_average_vt_kernel<<<grid_for(planes * h * w), 256, 0, stream()>>>(x, out, planes, h, w, k, coefs, scale);
  KS_CUDA_LAUNCHED(block_average_vt);
}

void block_average_v(const float* c, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs,
                     float scale) {
  block_average_v_kernel<<<grid_for(planes * h * w), 256, 0, stream()>>>(c, out, planes, h, w, k, coefs, scale);
  KS_CUDA_LAUNCHED(block_average_v);
}

}  // namespace ks::cuda
