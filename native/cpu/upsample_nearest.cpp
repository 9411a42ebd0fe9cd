// U: nearest upsampling by r, each value repeated over its r×r block (docs/bootstrap.md).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void upsample_nearest(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h * r, ow = w * r;
  parallel_for(planes * oh, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const float* src = x + (row / oh * h + row % oh / r) * w;
      for (int64_t ox = 0; ox < ow; ++ox) out[row * ow + ox] = src[ox / r];
    }
  });
}

}  // namespace ks::cpu
