// The residual aggregation of bootstrapping diffusion, fused: U f_lr + H Σ_j P_jᵀ (W_j ⊙ f_patch_j)
// (+ f0), one r×r cell at a time (aggregate_cell in kintsugi/patch_grid.h; docs/bootstrap.md).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void residual_aggregate(const float* f_lr, int r, const float* f_patch, const float* f0, float* out,
                        const PatchGrid& g) {
  const int64_t ch = g.h / r, cw = g.w / r;
  parallel_for(g.n * g.c * ch, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row)
      for (int64_t cx = 0; cx < cw; ++cx) aggregate_cell(f_lr, r, f_patch, f0, out, g, row / ch, row % ch, cx);
  });
}

}  // namespace ks::cpu
