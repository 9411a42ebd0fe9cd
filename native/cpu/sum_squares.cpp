#include <vector>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

// Like sum: double accumulation per fixed chunk, chunk sums added in order.
void sum_squares(const float* a, int64_t n, float* out) {
  constexpr int64_t grain = 1 << 16;
  std::vector<double> partial(static_cast<size_t>((n + grain - 1) / grain), 0.0);
  parallel_chunks(n, grain, [&](int64_t c, int64_t b, int64_t e) {
    double s = 0.0;
    for (int64_t i = b; i < e; ++i) s += static_cast<double>(a[i]) * a[i];
    partial[static_cast<size_t>(c)] = s;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  *out = static_cast<float>(total);
}

}  // namespace ks::cpu
