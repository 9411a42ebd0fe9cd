// A small persistent thread pool for the CPU reference: the ops split index ranges over all cores.
// The ranges are fixed by n and the grain alone, never by timing, so results do not depend on how
// many threads happen to run (reductions combine per-chunk partials in chunk order).
#pragma once
#include <cstdint>
#include <functional>

namespace ks::cpu {

int num_threads();
// Calls body(begin, end) for consecutive chunks of [0, n) of `grain` elements (the last one shorter),
// spread over the pool; returns when every chunk is done. Chunks run in any order.
void parallel_chunks(int64_t n, int64_t grain,
                     const std::function<void(int64_t chunk, int64_t begin, int64_t end)>& body);

template <class F>
void parallel_for(int64_t n, int64_t grain, F f) {
  parallel_chunks(n, grain, [&](int64_t, int64_t b, int64_t e) { f(b, e); });
}

// For elementwise work (no reduction, so the split cannot change a result): below `serial` elements
// one call on this thread (waking the pool costs more), else about two chunks per thread, whole
// cache lines each.
template <class F>
void parallel_elements(int64_t n, F f, int64_t serial = 16384) {
  if (n < serial || num_threads() == 1) return f(int64_t(0), n);
  const int64_t grain = ((n + 2 * num_threads() - 1) / (2 * num_threads()) + 15) / 16 * 16;
  parallel_for(n, grain, f);
}

}  // namespace ks::cpu
