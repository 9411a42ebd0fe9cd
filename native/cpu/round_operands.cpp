// The CPU reference's rounding mode: see round_operands.h.
#include "round_operands.h"

#include <vector>
#include "conv2d.h"
#include "kintsugi/nn_backend.h"

namespace ks::cpu {

void round_operands(const float* x, float* out, int64_t n, Precision p) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_operand(x[i], p);
}

namespace {
std::vector<float> rounded(const float* x, int64_t n, Precision p) {
  std::vector<float> r(static_cast<size_t>(n));
  round_operands(x, r.data(), n, p);
  return r;
}
}  // namespace

void conv2d_forward_rounded(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  conv2d_forward_rounded_fused(x, w, b, y, s, {});
}

// The epilogue's addends are not operands of the product: they are added unrounded, as the GPU's epilogue does.
void conv2d_forward_rounded_fused(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                                  const ConvEpilogue<float>& e) {
  if (s.precision == Precision::fp32) return conv2d_forward_fused<float>(x, w, b, y, s, e);
  const auto xr = rounded(x, s.n * s.cin * s.h * s.w, s.precision);
  const auto wr = rounded(w, s.cout * s.cin * s.k * s.k, s.precision);
  conv2d_forward_fused<float>(xr.data(), wr.data(), b, y, s, e);
}

void conv2d_backward_rounded(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                             const Conv2dShape& s) {
  if (s.precision == Precision::fp32) return conv2d_backward<float>(x, w, gy, gx, gw, gb, s);
  const int64_t plane = s.ho() * s.wo();
  const auto xr = rounded(x, s.n * s.cin * s.h * s.w, s.precision);
  const auto wr = rounded(w, s.cout * s.cin * s.k * s.k, s.precision);
  const auto gyr = rounded(gy, s.n * s.cout * plane, s.precision);
  conv2d_backward<float>(xr.data(), wr.data(), gyr.data(), gx, gw, nullptr, s);
  if (gb == nullptr) return;
  for (int64_t co = 0; co < s.cout; ++co) {  // per image in float, added over images in order (as CUDA)
    float total = 0.0f;
    for (int64_t img = 0; img < s.n; ++img) {
      double sum = 0.0;
      const float* p = gy + (img * s.cout + co) * plane;
      for (int64_t i = 0; i < plane; ++i) sum += p[i];
      total += static_cast<float>(sum);
    }
    gb[co] += total;
  }
}

}  // namespace ks::cpu
