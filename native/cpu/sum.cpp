// Full reductions (sum, sum of squares): double accumulation per fixed-size chunk, then the chunk sums
// added in order, so the result is accurate and independent of the thread count.
#include <vector>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {
namespace {

template <bool kSquare>
float reduce(const float* a, int64_t n) {
  constexpr int64_t grain = 1 << 16;
  std::vector<double> partial(static_cast<size_t>((n + grain - 1) / grain), 0.0);
  parallel_chunks(n, grain, [&](int64_t c, int64_t b, int64_t e) {
    double s = 0.0;
    for (int64_t i = b; i < e; ++i) s += kSquare ? static_cast<double>(a[i]) * a[i] : a[i];
    partial[static_cast<size_t>(c)] = s;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return static_cast<float>(total);
}

}  // namespace

void sum(const float* a, int64_t n, float* out) { *out = reduce<false>(a, n); }

void sum_squares(const float* a, int64_t n, float* out) { *out = reduce<true>(a, n); }

}  // namespace ks::cpu
