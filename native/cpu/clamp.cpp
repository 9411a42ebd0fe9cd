#include <cmath>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

// Written with comparisons rather than std::clamp so NaN passes through, as on the GPU.
void clamp(const float* a, float low, float high, float* out, int64_t n) {
  parallel_for(n, 1 << 16, [=](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] < low ? low : (a[i] > high ? high : a[i]);
  });
}

}  // namespace ks::cpu
