// Σ_j P_jᵀ (W_j ⊙ patches_j) as a gather: one thread per image pixel reads the (few) patches covering
// it, so there are no atomics and the sum has a fixed order (the CPU's: overlap_value).
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void patch_overlap_add_kernel(const float* patches, float* out, PatchGrid g) {
  const int64_t total = g.n * g.c * g.h * g.w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.w, y = i / g.w % g.h, p = i / (g.w * g.h);
    out[i] = overlap_value(patches, g, p / g.c, p % g.c, y, x);
  }
}
}  // namespace

void patch_overlap_add(const float* patches, float* out, const PatchGrid& g) {
  patch_overlap_add_kernel<<<grid_for(g.n * g.c * g.h * g.w), 256, 0, stream()>>>(patches, out, g);
  KS_CUDA_LAUNCHED(patch_overlap_add);
}

}  // namespace ks::cuda
