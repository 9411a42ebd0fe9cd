// SVD-domain noising of GSURE-Diffusion (kintsugi/gsure.h) with the normal draw fused in: one thread
// per Philox block (4 elements), as randn, so ε equals randn's draw of the same key.
#include "common.cuh"
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"

namespace ks::cuda {
namespace {

__global__ void svd_noise_kernel(const float* ybar, const float* v, int64_t v_stride, const float* coef,
                                 int64_t per_sample, int64_t total, RngKey key, float* out) {
  const int64_t blocks = (total + 3) / 4;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < blocks; q += int64_t(gridDim.x) * blockDim.x) {
    float z[4];
    philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(q), z);
    for (int64_t j = 0, idx = 4 * q; j < 4 && idx < total; ++j, ++idx) {
      const int64_t b = idx / per_sample, i = idx % per_sample;
      const float* cb = coef + 3 * b;
      // D = (1 − ᾱ) − ᾱ v in one rounding; clamped so rounding at D ≈ 0 can never give a NaN.
      const float d = fmaxf(fmaf(-cb[1], v[b * v_stride + i], cb[2]), 0.0f);
      out[idx] = fmaf(cb[0], ybar[idx], sqrtf(d) * z[j]);
    }
  }
}

}  // namespace

void svd_noise(const float* ybar, const float* v, int64_t v_stride, const float* coef, int64_t n, int64_t per_sample,
               RngKey key, float* out) {
  const int64_t total = n * per_sample;
  svd_noise_kernel<<<grid_for((total + 3) / 4), 256, 0, stream()>>>(ybar, v, v_stride, coef, per_sample, total, key,
                                                                    out);
  KS_CUDA_LAUNCHED(svd_noise);
}

}  // namespace ks::cuda
