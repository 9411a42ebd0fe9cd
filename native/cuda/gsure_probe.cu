// The Hutchinson probe shifts of GSURE (kintsugi/gsure.h): x̄_t ± eps b for every probe row, one
// thread per Philox block of the probe draw (4 elements), the probes never stored.
#include "common.cuh"
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"

namespace ks::cuda {
namespace {

__global__ void gsure_probe_kernel(const float* xt, int64_t per_sample, int probes, float eps, int64_t total,
                                   RngKey key, float* plus, float* minus) {
  const int64_t blocks = (total + 3) / 4;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < blocks; q += int64_t(gridDim.x) * blockDim.x) {
    float z[4];
    philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(q), z);
    for (int64_t j = 0, idx = 4 * q; j < 4 && idx < total; ++j, ++idx) {
      const int64_t row = idx / per_sample, i = idx % per_sample;
      const float x = xt[(row / probes) * per_sample + i];
      plus[idx] = fmaf(eps, z[j], x);
      if (minus) minus[idx] = fmaf(-eps, z[j], x);
    }
  }
}

}  // namespace

void gsure_probe(const float* xt, int64_t n, int64_t per_sample, int probes, float eps, RngKey key, float* plus,
                 float* minus) {
  const int64_t total = n * probes * per_sample;
  gsure_probe_kernel<<<grid_for((total + 3) / 4), 256, 0, stream()>>>(xt, per_sample, probes, eps, total, key, plus,
                                                                      minus);
  KS_CUDA_LAUNCHED(gsure_probe);
}

}  // namespace ks::cuda
