#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void scale(const float* a, float s, float* out, int64_t n) {
  parallel_for(n, 1 << 16, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = s * a[i];
  });
}

}  // namespace ks::cpu
