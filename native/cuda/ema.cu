#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
__global__ void ema_kernel(float* ema, const float* params, int64_t n, float decay) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    ema[i] = decay * ema[i] + (1.0f - decay) * params[i];
}
}  // namespace

void ema_update(float* ema, const float* params, int64_t n, float decay) {
  ema_kernel<<<grid_for(n), 256, 0, stream()>>>(ema, params, n, decay);
  KS_CUDA_LAUNCHED(ema);
}

}  // namespace ks::cuda
