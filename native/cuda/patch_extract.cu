// P_j: patches at the grid offsets (and the position channels), one thread per output value.
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void patch_extract_kernel(const float* x, float* out, PatchGrid g, bool positions) {
  const int64_t P = g.size, J = g.count(), cols = g.cols(), cout = g.c + (positions ? 2 : 0);
  const int64_t total = g.n * J * cout * P * P;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = i % P, u = i / P % P, plane = i / (P * P);
    const int64_t ch = plane % cout, j = plane / cout % J, b = plane / cout / J;
    const int64_t oy = j / cols * g.stride, ox = j % cols * g.stride;
    out[i] = ch < g.c    ? x[((b * g.c + ch) * g.h + oy + u) * g.w + ox + v]
             : ch == g.c ? patch_position(oy + u, g.h)
                         : patch_position(ox + v, g.w);
  }
}
}  // namespace

void patch_extract(const float* x, float* out, const PatchGrid& g, bool positions) {
  const int64_t total = g.n * g.count() * (g.c + (positions ? 2 : 0)) * g.size * g.size;
  patch_extract_kernel<<<grid_for(total), 256, 0, stream()>>>(x, out, g, positions);
  KS_CUDA_LAUNCHED(patch_extract);
}

}  // namespace ks::cuda
