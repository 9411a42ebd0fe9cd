// Convolution on tensor cores (tc_conv.cu): reached through conv2d_forward / conv2d_backward (nn.h)
// when the shape asks for BF16 or TF32 operands and the device has them (tensor_cores_available()),
// and directly through the fused entry points below (the UNet block of issue #13; docs/fused-conv.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include "kintsugi/nn_shapes.h"

namespace ks::cuda {

// y = conv(x, w) + b, operands rounded to s.precision (bf16 or tf32), FP32 accumulation.
void tc_conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// gx = dL/dx (overwritten, skipped when null), gw += dL/dw; the bias gradient is conv2d_backward's.
void tc_conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, const Conv2dShape& s);
// Slices of the weight gradient's split-K (for tests: the fold's bound).
int64_t tc_conv2d_weight_slices(const Conv2dShape& s);
// The weight-gradient scratch cap in force (conv2d.cu; conv2d_weight_scratch_cap sets it).
size_t conv2d_weight_scratch_bytes();
// gb[co] += sum of gy over images and pixels, deterministic (conv2d.cu; the fused path's bias gradient).
void conv2d_bias_backward(const float* gy, float* gb, const Conv2dShape& s);

// ---- The fused block: what the conv reads (prologue, gather) and what it adds when it stores (epilogue).
//
// The conv's logical input a has the shape's [s.n, s.cin, s.h, s.w]. It is gathered from
//   x   [n, c1, hx, wx]            channels [0, c1) of a
//   x2  [n, cin - c1, hx, wx]      channels [c1, cin) (concat), or null: then c1 is ignored, x has cin
// where (hx, wx) = (h, w), or (h / 2, w / 2) with upsample (nearest: a(iy, ix) = x(iy / 2, ix / 2); h and
// w must be even), and, with scale and shift (both [n, cin], from groupnorm_scale_shift), transformed as
//   a = silu(x * scale[n, ci] + shift[n, ci])   (one fmaf, then v / (1 + exp(-v)), in FP32)
// before the operand rounding; with silu false a = x * scale + shift (GroupNorm alone: the attention
// block's qkv conv). Padding taps are zero AFTER the transform (a's zero padding, as the
// unfused conv over a materialised silu(groupnorm(x)) has).
struct TcConvInput {
  const float* x = nullptr;
  const float* x2 = nullptr;
  int64_t c1 = 0;
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool upsample = false;
  bool silu = true;
};

// Added to the accumulator in the forward's store, in this order, each skipped when null:
//   y[n, co, p] = ((conv + bias[co]) + channel_bias[n, co]) + residual[n, co, p]
// bias [cout] (the conv's), channel_bias [n, cout] (the ResBlock's time projection), residual shaped
// like y (the skip connection). Deterministic: one thread writes each element once, no atomics.
// stats (fold 1, GroupNorm statistics from the epilogue): non-null, the block also writes per-tile
// partial statistics of the y it stored, for groupnorm_stats_fold; tc_stats_doubles(n, ho * wo, cout)
// doubles, laid out as tc_conv.cu's stats_slot says. Deterministic: each slot written by one thread.
struct TcEpilogue {
  const float* bias = nullptr;
  const float* channel_bias = nullptr;
  const float* residual = nullptr;
  double* stats = nullptr;
};

// Doubles of TcEpilogue::stats for an output of [n, channels, hw] (a function of n, hw and channels only).
int64_t tc_stats_doubles(int64_t n, int64_t hw, int64_t channels);

// GroupNorm statistics of x [n, c, hw] from the partials the producing conv(s) wrote in their epilogue:
// mean, rstd [n, groups] as groupnorm_forward writes them (mean in double, biased variance, rstd =
// 1 / sqrt(var + eps), both rounded to float once). part covers channels [0, c1) of x (a conv output of
// c1 channels); part2, for a concat, channels [c1, c) (another conv's output of c - c1 channels; null:
// c1 must equal c). The partials are (mean, M2) over at most 64 pixels, merged per group in double by
// Chan's formula in a fixed order: no sums of squares, so no cancellation (docs in NOTES.md).
void groupnorm_stats_fold(const double* part, const double* part2, int64_t c1, int64_t n, int64_t c, int64_t hw,
                          int groups, double eps, float* mean, float* rstd);

// scale[n, c] = rstd[n, g] * gamma[c], shift[n, c] = beta[c] - mean[n, g] * scale[n, c] (as one fmaf),
// g = c / (channels / groups): GroupNorm's affine map folded per (sample, channel), from the statistics
// groupnorm_forward writes (mean, rstd: [n, groups]). channels % groups must be 0.
void groupnorm_scale_shift(const float* mean, const float* rstd, const float* gamma, const float* beta, float* scale,
                           float* shift, int64_t n, int64_t channels, int groups);

// y = epilogue(conv(a, w)) with a gathered (and transformed) as TcConvInput says. s describes the conv
// on a (s.h, s.w: a's size, i.e. the upsampled size with upsample). s.precision: bf16 or tf32 (tensor
// cores), or fp32 (the same kernel with FP32 FMAs: the exact path of the fused block). Needs sm_80+
// (cp.async): callers check tensor_cores_available() and otherwise take the unfused kernels.
void tc_conv2d_forward_fused(const TcConvInput& in, const float* w, const TcEpilogue& ep, float* y,
                             const Conv2dShape& s);

// The backward of the same conv: gw += dL/dw with a recomputed on the fly from in (never stored), and
// the gradient with respect to a (not x: the GroupNorm + SiLU backward is groupnorm_silu's), skipped when
// ga is null. ga is a's gradient at a's size: with upsample the caller folds it to x's size with
// upsample2_backward. With x2 set and ga2 non-null the gradient is split by channel: ga [n, c1, h, w],
// ga2 [n, cin - c1, h, w] (no split_channels pass); with ga2 null, ga holds all cin channels. The bias,
// channel-bias and residual gradients are plain reductions or copies of gy (channel_sums, as today).
void tc_conv2d_backward_fused(const TcConvInput& in, const float* w, const float* gy, float* ga, float* ga2, float* gw,
                              const Conv2dShape& s);

}  // namespace ks::cuda
