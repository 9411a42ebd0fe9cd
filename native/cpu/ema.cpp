// The exponential moving average of the weights that sampling uses.
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void ema_update(float* ema, const float* params, int64_t n, float decay) {
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) ema[i] = decay * ema[i] + (1.0f - decay) * params[i];
  });
}

}  // namespace ks::cpu
