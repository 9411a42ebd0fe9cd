#include <cstring>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void copy(const float* src, float* dst, int64_t n) {
  parallel_for(n, 1 << 18, [=](int64_t b, int64_t e) {
    std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(float));
  });
}

}  // namespace ks::cpu
