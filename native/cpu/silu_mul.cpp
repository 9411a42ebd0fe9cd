// out = silu(a) * b elementwise: the gate of a gated linear unit (SwiGLU), one pass instead of two.
// The worked example of docs/adding-an-op.md.
#include <cmath>
#include "kintsugi/nn_backend.h"
#include "parallel.h"

namespace ks::cpu {

void silu_mul(const float* a, const float* b, float* out, int64_t n) {
  parallel_for(n, 1 << 16, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
  });
}

}  // namespace ks::cpu
