// Per-sample linear combinations (noising, target conversions, sampler updates).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void combine(float* out, const float* const x[3], const float* const c[3], int terms, int64_t n, int64_t per_sample) {
  parallel_for(n * per_sample, 1 << 15, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t b = i / per_sample;
      float acc = c[0][b] * x[0][i];
      for (int k = 1; k < terms; ++k) acc += c[k][b] * x[k][i];
      out[i] = acc;
    }
  });
}

}  // namespace ks::cpu
