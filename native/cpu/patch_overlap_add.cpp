// Σ_j P_jᵀ (W_j ⊙ patches_j): patches put back in place, weights summing to one per pixel
// (the window and the gather are in kintsugi/patch_grid.h; docs/bootstrap.md).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void patch_overlap_add(const float* patches, float* out, const PatchGrid& g) {
  parallel_for(g.n * g.c * g.h, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t p = row / g.h, y = row % g.h;
      for (int64_t x = 0; x < g.w; ++x) out[row * g.w + x] = overlap_value(patches, g, p / g.c, p % g.c, y, x);
    }
  });
}

}  // namespace ks::cpu
