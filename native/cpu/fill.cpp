#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void fill(float* out, int64_t n, float value) {
  parallel_for(n, 1 << 16, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = value;
  });
}

}  // namespace ks::cpu
