// The fused residual aggregation: one thread per r×r cell gathers the overlap-added patch view for its
// r² pixels (written straight into out), takes their mean, and rewrites them as f_lr + g − mean (+ f0).
// One pass over the patch outputs and f0, no scratch, no atomics; each thread touches only its cell.
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void residual_aggregate_kernel(const float* f_lr, int r, const float* f_patch, const float* f0, float* out,
                                          PatchGrid g) {
  const int64_t ch = g.h / r, cw = g.w / r, total = g.n * g.c * ch * cw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    aggregate_cell(f_lr, r, f_patch, f0, out, g, i / (ch * cw), i / cw % ch, i % cw);
}
}  // namespace

void residual_aggregate(const float* f_lr, int r, const float* f_patch, const float* f0, float* out,
                        const PatchGrid& g) {
  const int64_t cells = g.n * g.c * (g.h / r) * (g.w / r);
  residual_aggregate_kernel<<<grid_for(cells), 256, 0, stream()>>>(f_lr, r, f_patch, f0, out, g);
  KS_CUDA_LAUNCHED(residual_aggregate);
}

}  // namespace ks::cuda
