// AdamW as PyTorch computes it (torch.optim.AdamW, foreach=False): p *= 1 - lr*wd;
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps).
#include <algorithm>
#include <cmath>
#include "kintsugi/backend.h"
#include "isa.h"
#include "parallel.h"

namespace ks::cpu {

namespace {
// In float, as the CUDA kernel computes it.
float clip_scale(const float* sumsq, float max_norm) {
  return max_norm > 0.0f ? std::min(1.0f, max_norm / (std::sqrt(*sumsq) + 1e-6f)) : 1.0f;
}
}  // namespace

void adamw(float* params, const float* grads, float* m, float* v, const float* sumsq, int64_t n, const AdamWConfig& c) {
  const float scale = clip_scale(sumsq, c.max_norm);
  const float bc1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(c.beta1), static_cast<double>(c.step)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(c.beta2), static_cast<double>(c.step)));
  const float step_size = c.lr / bc1, bc2_sqrt = std::sqrt(bc2), decay = 1.0f - c.lr * c.weight_decay;
  const isa::AdamWStep st{scale, c.beta1, c.beta2, step_size, bc2_sqrt, c.eps, decay};
  const isa::Kernels& k = kernels();
  // One pass over parameters, gradients and both moments, on the selected instruction set.
  parallel_elements(n, [&](int64_t lo, int64_t hi) { k.adamw(params + lo, grads + lo, m + lo, v + lo, hi - lo, st); });
}

}  // namespace ks::cpu
