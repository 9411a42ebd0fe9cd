// Shapes of the network ops, shared by the CPU reference and the CUDA kernels.
#pragma once
#include <algorithm>
#include <cstdint>
#include "kintsugi/precision.h"

namespace ks {

// Convolution with a square kernel k (1 or 3), stride 1 or 2, zero padding k/2; weight [cout, cin, k, k].
struct Conv2dShape {
  int64_t n, cin, h, w, cout;
  int k, stride;
  // Operand precision (kintsugi/precision.h): fp32 is exact; bf16 / tf32 round x, w and gy as the
  // tensor cores do (on the CPU: cpu/round_operands.cpp rounds copies, then runs the FP32 kernels).
  Precision precision = Precision::fp32;
  int64_t ho() const { return (h + 2 * (k / 2) - k) / stride + 1; }
  int64_t wo() const { return (w + 2 * (k / 2) - k) / stride + 1; }
  // Output columns [first, last) whose input column ox * stride + kw - pad lies inside [0, w).
  int64_t first_col(int kw) const { return std::max<int64_t>(0, ceil_div(k / 2 - kw, stride)); }
  int64_t last_col(int kw) const { return std::min<int64_t>(wo(), floor_div(w - 1 + k / 2 - kw, stride) + 1); }

  static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
  static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
};

// GroupNorm over [n, c, hw] with `groups` groups, biased variance, per-channel affine.
struct GroupNormShape {
  int64_t n, c, hw;
  int groups;
  double eps = 1e-5;
  int64_t group_size() const { return c / groups * hw; }
};

}  // namespace ks
