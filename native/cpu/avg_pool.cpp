// A: the r×r block mean (the low-resolution view of bootstrapping diffusion, docs/bootstrap.md).
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void avg_pool(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h / r, ow = w / r;
  const float area = static_cast<float>(r * r);
  parallel_for(planes * oh, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const float* src = x + (row / oh * h + row % oh * r) * w;
      for (int64_t ox = 0; ox < ow; ++ox) {
        float acc = 0;
        for (int dy = 0; dy < r; ++dy)
          for (int dx = 0; dx < r; ++dx) acc += src[dy * w + ox * r + dx];
        out[row * ow + ox] = acc / area;
      }
    }
  });
}

}  // namespace ks::cpu
