// The float elementwise passes of the network (SiLU and its gradient) on the selected instruction
// set's kernels (isa.h), split over the thread pool; and the graph's elementwise helpers (unet.h).
#include <algorithm>
#include <cstring>
#include "isa.h"
#include "parallel.h"
#include "silu.h"
#include "unet.h"

namespace ks::cpu {

void silu_forward_f32(const float* x, float* y, int64_t n) {
  const isa::Kernels& k = kernels();
  parallel_elements(n, [&](int64_t lo, int64_t hi) { k.silu_forward(x + lo, y + lo, hi - lo); });
}

void silu_backward_f32(const float* x, const float* gy, float* gx, int64_t n) {
  const isa::Kernels& k = kernels();
  parallel_elements(n, [&](int64_t lo, int64_t hi) { k.silu_backward(x + lo, gy + lo, gx + lo, hi - lo); });
}

}  // namespace ks::cpu

namespace ks::cpu {

void add_inplace_f32(float* a, const float* b, int64_t n) {
  const isa::Kernels& k = kernels();
  parallel_elements(n, [&](int64_t lo, int64_t hi) { k.add(a + lo, b + lo, hi - lo); });
}

void copy_f32(const float* src, float* dst, int64_t n) {
  parallel_elements(n, [&](int64_t lo, int64_t hi) {
    std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(float));
  });
}

// x[i, p] += bias[i] over planes i of hw elements.
void add_channel_bias_f32(float* x, const float* bias, int64_t n, int64_t c, int64_t hw) {
  const isa::Kernels& k = kernels();
  parallel_for(n * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) k.add_scalar(x + i * hw, bias[i], hw);
  });
}

// out[i] = sum of plane i (each plane summed by one thread: no dependence on the thread count).
void channel_sums_f32(const float* x, float* out, int64_t n, int64_t c, int64_t hw) {
  const isa::Kernels& k = kernels();
  parallel_for(n * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = static_cast<float>(k.sum(x + i * hw, hw));
  });
}

}  // namespace ks::cpu
