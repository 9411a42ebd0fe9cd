// H = I − U A: removes the mean of each r×r block (the part of an image the low-resolution view does
// not see; docs/bootstrap.md). The mean is summed in the order of avg_pool, so H x and x − U A x agree.
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void high_pass(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r) {
  const int64_t oh = h / r, ow = w / r;
  const float area = static_cast<float>(r * r);
  parallel_for(planes * oh, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t base = (row / oh * h + row % oh * r) * w;
      for (int64_t ox = 0; ox < ow; ++ox) {
        float acc = 0;
        for (int dy = 0; dy < r; ++dy)
          for (int dx = 0; dx < r; ++dx) acc += x[base + dy * w + ox * r + dx];
        const float mean = acc / area;
        for (int dy = 0; dy < r; ++dy)
          for (int dx = 0; dx < r; ++dx) out[base + dy * w + ox * r + dx] = x[base + dy * w + ox * r + dx] - mean;
      }
    }
  });
}

}  // namespace ks::cpu
