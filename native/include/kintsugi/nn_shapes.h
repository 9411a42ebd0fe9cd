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

// What a convolution's output pass may add besides its bias, while the output is still in registers or
// cache: chan_bias [n, cout] (a per-sample, per-channel bias: the UNet's time projection) and residual
// (the same shape as y: the ResBlock's skip). Null members are skipped; the order of the additions is
// ((conv + b) + chan_bias) + residual. y must not alias residual or the convolution's input.
template <class T>
struct ConvEpilogue {
  const T* chan_bias = nullptr;
  const T* residual = nullptr;
  bool empty() const { return chan_bias == nullptr && residual == nullptr; }
};

// GroupNorm over [n, c, hw] with `groups` groups, biased variance, per-channel affine.
struct GroupNormShape {
  int64_t n, c, hw;
  int groups;
  double eps = 1e-5;
  int64_t group_size() const { return c / groups * hw; }
};

// The UNet's normalisation + SiLU + convolution pair, y = conv(silu(groupnorm(x))) + epilogue: the
// parameters and shapes of both halves, passed whole to a backend (unet_graph.h's Ops) so that it may
// fuse the normalisation into the convolution's operand loader instead of writing a = silu(groupnorm(x)).
template <class T>
struct NormSiluConv {
  const T* gamma;
  const T* beta;
  GroupNormShape norm;  // [n, cin, h * w]
  const T* w;
  const T* b;  // may be null
  Conv2dShape conv;
};

}  // namespace ks
