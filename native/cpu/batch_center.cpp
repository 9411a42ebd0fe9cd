// x less its mean over the batch (the gradient of the residual denoiser's batch-variance penalty,
// docs/bootstrap.md). The mean of each element is summed over the batch in order, in double.
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void batch_center(const float* x, float* out, int64_t n, int64_t per_sample) {
  parallel_for(per_sample, 1024, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      double acc = 0;
      for (int64_t b = 0; b < n; ++b) acc += x[b * per_sample + i];
      const float mean = static_cast<float>(acc / static_cast<double>(n));
      for (int64_t b = 0; b < n; ++b) out[b * per_sample + i] = x[b * per_sample + i] - mean;
    }
  });
}

}  // namespace ks::cpu
