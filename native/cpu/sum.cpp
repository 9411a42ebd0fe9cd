#include <vector>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

// Accumulates in double per fixed-size chunk, then adds the chunk sums in order: the reference is
// accurate (relative error ~1e-16 before the final rounding) and independent of the thread count.
void sum(const float* a, int64_t n, float* out) {
  constexpr int64_t grain = 1 << 16;
  std::vector<double> partial(static_cast<size_t>((n + grain - 1) / grain), 0.0);
  parallel_chunks(n, grain, [&](int64_t c, int64_t b, int64_t e) {
    double s = 0.0;
    for (int64_t i = b; i < e; ++i) s += a[i];
    partial[static_cast<size_t>(c)] = s;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  *out = static_cast<float>(total);
}

}  // namespace ks::cpu
