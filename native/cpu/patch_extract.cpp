// P_j: the size×size patches of an image at the grid offsets, batched as [n · J, c (+ 2), P, P], with
// optional position channels (docs/bootstrap.md).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void patch_extract(const float* x, float* out, const PatchGrid& g, bool positions) {
  const int64_t P = g.size, J = g.count(), cols = g.cols(), cout = g.c + (positions ? 2 : 0);
  parallel_for(g.n * J * cout, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const int64_t ch = plane % cout, j = plane / cout % J, b = plane / cout / J;
      const int64_t oy = j / cols * g.stride, ox = j % cols * g.stride;
      float* dst = out + plane * P * P;
      for (int64_t u = 0; u < P; ++u)
        for (int64_t v = 0; v < P; ++v)
          dst[u * P + v] = ch < g.c    ? x[((b * g.c + ch) * g.h + oy + u) * g.w + ox + v]
                           : ch == g.c ? patch_position(oy + u, g.h)
                                       : patch_position(ox + v, g.w);
    }
  });
}

}  // namespace ks::cpu
