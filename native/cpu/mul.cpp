// Elementwise product: the mask operators (H = diag(m)) and projections onto observed coordinates.
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void mul(const float* a, const float* b, float* out, int64_t n) {
  parallel_for(n, 1 << 16, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] * b[i];
  });
}

}  // namespace ks::cpu
