// x less its batch mean: one thread per element of a sample, summing down the batch in order (in
// double, as the CPU) before writing; reads of a column all precede its writes, so out may be x.
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void batch_center_kernel(const float* x, float* out, int64_t n, int64_t per_sample) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < per_sample;
       i += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int64_t b = 0; b < n; ++b) acc += x[b * per_sample + i];
    const float mean = static_cast<float>(acc / static_cast<double>(n));
    for (int64_t b = 0; b < n; ++b) out[b * per_sample + i] = x[b * per_sample + i] - mean;
  }
}
}  // namespace

void batch_center(const float* x, float* out, int64_t n, int64_t per_sample) {
  batch_center_kernel<<<grid_for(per_sample), 256, 0, stream()>>>(x, out, n, per_sample);
  KS_CUDA_LAUNCHED(batch_center);
}

}  // namespace ks::cuda
