// SVD-domain noising of GSURE-Diffusion (kintsugi/gsure.h) with the normal draw fused in: Philox block
// q gives elements 4q .. 4q+3 of the batch, as in randn, so ε equals randn's draw of the same key.
#include <algorithm>
#include <cmath>
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"
#include "parallel.h"

namespace ks::cpu {

void svd_noise(const float* ybar, const float* v, int64_t v_stride, const float* coef, int64_t n, int64_t per_sample,
               RngKey key, float* out) {
  const int64_t total = n * per_sample, blocks = (total + 3) / 4;
  parallel_for(blocks, 1 << 12, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      float z[4];
      philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(q), z);
      for (int64_t j = 0, idx = 4 * q; j < 4 && idx < total; ++j, ++idx) {
        const int64_t b = idx / per_sample, i = idx % per_sample;
        const float* cb = coef + 3 * b;
        // D = (1 − ᾱ) − ᾱ v in one rounding; clamped so rounding at D ≈ 0 can never give a NaN.
        const float d = std::max(std::fma(-cb[1], v[b * v_stride + i], cb[2]), 0.0f);
        out[idx] = std::fma(cb[0], ybar[idx], std::sqrt(d) * z[j]);
      }
    }
  });
}

}  // namespace ks::cpu
