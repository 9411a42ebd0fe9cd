// Per-sample linear combinations (noising, target conversions, sampler updates): one thread per
// element, the coefficients read from device memory (no host synchronisation).
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {

struct Terms {
  const float* x[3];
  const float* c[3];
};

__global__ void combine_kernel(float* out, Terms t, int terms, int64_t n, int64_t per_sample) {
  const int64_t total = n * per_sample;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per_sample;
    float acc = t.c[0][b] * t.x[0][i];
    for (int k = 1; k < terms; ++k) acc += t.c[k][b] * t.x[k][i];
    out[i] = acc;
  }
}

}  // namespace

void combine(float* out, const float* const x[3], const float* const c[3], int terms, int64_t n, int64_t per_sample) {
  Terms t{{x[0], x[1], x[2]}, {c[0], c[1], c[2]}};
  combine_kernel<<<grid_for(n * per_sample), 256, 0, stream()>>>(out, t, terms, n, per_sample);
  KS_CUDA_LAUNCHED(combine);
}

}  // namespace ks::cuda
