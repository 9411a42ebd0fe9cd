// One fused AdamW pass over the flat parameter array (the whole model is one "multi-tensor" launch);
// the clipping scale is computed on the device from the squared gradient norm, so no host sync.
#include <cmath>
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {

__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, const float* sumsq, int64_t n,
                             AdamWConfig c, float step_size, float bc2_sqrt) {
  float scale = 1.0f;
  if (c.max_norm > 0.0f) scale = fminf(1.0f, c.max_norm / (sqrtf(*sumsq) + 1e-6f));
  const float decay = 1.0f - c.lr * c.weight_decay;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grads[i] * scale;
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * g;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = params[i] * decay - step_size * mi / (sqrtf(vi) / bc2_sqrt + c.eps);
  }
}

}  // namespace

void adamw(float* params, const float* grads, float* m, float* v, const float* sumsq, int64_t n, const AdamWConfig& c) {
  const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(c.beta1), static_cast<double>(c.step)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(c.beta2), static_cast<double>(c.step)));
  adamw_kernel<<<grid_for(n), 256, 0, stream()>>>(params, grads, m, v, sumsq, n, c, c.lr / bc1, std::sqrt(bc2));
  KS_CUDA_LAUNCHED(adamw);
}

}  // namespace ks::cuda
