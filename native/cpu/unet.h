// The UNet on the CPU: the shared graph (include/kintsugi/unet_graph.h) over std::vector buffers and the reference
// ops. Float for use, double for gradient checks and the PyTorch fixtures.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include "kintsugi/unet_graph.h"
#include "attention.h"
#include "conv2d.h"
#include "groupnorm.h"
#include "groupnorm_silu.h"
#include "linear.h"
#include "silu.h"
#include "time_embedding.h"
#include "round_operands.h"
#include "upsample.h"

namespace ks::cpu {

// The float elementwise passes of the graph on the selected instruction set, on the thread pool
// (elementwise.cpp).
void add_inplace_f32(float* a, const float* b, int64_t n);
void add_channel_bias_f32(float* x, const float* bias, int64_t n, int64_t c, int64_t hw);
void channel_sums_f32(const float* x, float* out, int64_t n, int64_t c, int64_t hw);
void copy_f32(const float* src, float* dst, int64_t n);

// Leaves new elements uninitialised: every buffer the graph allocates is written in full before it
// is read (fill_zero where it accumulates), and zeroing each fresh activation cost a few percent of
// a step.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};

template <class T>
struct CpuOps {
  using Scalar = T;
  using Buffer = std::vector<T, UninitAllocator<T>>;

  static Buffer alloc(int64_t n) { return Buffer(static_cast<size_t>(n)); }
  static T* ptr(Buffer& b) { return b.data(); }
  static const T* ptr(const Buffer& b) { return b.data(); }

  static void copy(const T* src, T* dst, int64_t n) {
    if constexpr (std::is_same_v<T, float>) return copy_f32(src, dst, n);
    std::copy_n(src, n, dst);
  }
  static void fill_zero(T* a, int64_t n) { std::fill_n(a, n, T(0)); }
  static void add_inplace(T* a, const T* b, int64_t n) {
    if constexpr (std::is_same_v<T, float>) return add_inplace_f32(a, b, n);
    for (int64_t i = 0; i < n; ++i) a[i] += b[i];
  }
  static void add_channel_bias(T* x, const T* bias, int64_t n, int64_t c, int64_t hw) {
    if constexpr (std::is_same_v<T, float>) return add_channel_bias_f32(x, bias, n, c, hw);
    for (int64_t i = 0; i < n * c; ++i)
      for (int64_t p = 0; p < hw; ++p) x[i * hw + p] += bias[i];
  }
  static void channel_sums(const T* x, T* out, int64_t n, int64_t c, int64_t hw) {
    if constexpr (std::is_same_v<T, float>) return channel_sums_f32(x, out, n, c, hw);
    for (int64_t i = 0; i < n * c; ++i) {
      T acc = 0;
      for (int64_t p = 0; p < hw; ++p) acc += x[i * hw + p];
      out[i] = acc;
    }
  }
  static void concat_channels(const T* a, const T* b, T* out, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(a + i * ca * hw, ca * hw, out + i * (ca + cb) * hw);
      std::copy_n(b + i * cb * hw, cb * hw, out + i * (ca + cb) * hw + ca * hw);
    }
  }
  static void split_channels(const T* in, T* a, T* b, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(in + i * (ca + cb) * hw, ca * hw, a + i * ca * hw);
      std::copy_n(in + i * (ca + cb) * hw + ca * hw, cb * hw, b + i * cb * hw);
    }
  }

  // Float: with a reduced precision the operands are rounded as the tensor cores round them
  // (round_operands.h); the double reference is always exact.
  static void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
    if constexpr (std::is_same_v<T, float>)
      cpu::conv2d_forward_rounded(x, w, b, y, s);
    else
      cpu::conv2d_forward<T>(x, w, b, y, s);
  }
  static void conv2d_backward(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s) {
    if constexpr (std::is_same_v<T, float>)
      cpu::conv2d_backward_rounded(x, w, gy, gx, gw, gb, s);
    else
      cpu::conv2d_backward<T>(x, w, gy, gx, gw, gb, s);
  }
  static void conv2d_forward_fused(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s,
                                   const ConvEpilogue<T>& e) {
    if constexpr (std::is_same_v<T, float>)
      cpu::conv2d_forward_rounded_fused(x, w, b, y, s, e);
    else
      cpu::conv2d_forward_fused<T>(x, w, b, y, s, e);
  }

  // The graph's conv entry points (unet_graph.h). The CPU gathers nothing: the graph writes concats and
  // upsamples for it, once per stage (a concat feeds two convs and the residual), as it always did.
  static bool gathers(Precision) { return false; }
  static void require_plain(const ConvInput<T>& in, const char* what) {
    if (!in.plain())
      throw std::logic_error(std::string(what) +
                             ": the CPU backend takes no concat or upsample gather (gathers() is false)");
  }
  static void conv_forward(const ConvInput<T>& in, const T* w, const T* b, T* y, const Conv2dShape& s,
                           const ConvEpilogue<T>& e) {
    require_plain(in, "conv_forward");
    conv2d_forward_fused(in.x, w, b, y, s, e);
  }
  static void conv_backward(const ConvInput<T>& in, const T* w, const T* gy, T* gx, T* /*gx2: no concat*/, T* gw, T* gb,
                            const Conv2dShape& s) {
    require_plain(in, "conv_backward");
    conv2d_backward(in.x, w, gy, gx, gw, gb, s);
  }

  // The normalisation + conv pair: GroupNorm (+ SiLU) writes a, kept for the convolution's weight
  // gradient; the convolution adds its epilogue in its output pass.
  static void norm_conv_forward(const NormSiluConv<T>& p, bool silu, const ConvInput<T>& in, T* mean, T* rstd,
                                Buffer& a, T* y, const ConvEpilogue<T>& e) {
    require_plain(in, "norm_conv_forward");
    a = alloc(p.norm.n * p.norm.c * p.norm.hw);
    normalise(p, silu, in.x, a.data(), mean, rstd);
    conv2d_forward_fused(a.data(), p.w, p.b, y, p.conv, e);
  }
  static void norm_conv_backward(const NormSiluConv<T>& p, bool silu, const ConvInput<T>& in, const T* mean,
                                 const T* rstd, const Buffer& a, const T* gy, T* gx, T* /*gx2: no concat*/, T* ggamma,
                                 T* gbeta, T* gw, T* gb) {
    require_plain(in, "norm_conv_backward");
    const int64_t count = p.norm.n * p.norm.c * p.norm.hw;
    Buffer recomputed;
    const T* av = a.data();
    if (a.empty()) {  // a backend that did not keep a: recompute it (the statistics come out the same)
      recomputed = alloc(count);
      Buffer m = alloc(p.norm.n * p.norm.groups), r = alloc(p.norm.n * p.norm.groups);
      normalise(p, silu, in.x, recomputed.data(), m.data(), r.data());
      av = recomputed.data();
    }
    Buffer ga = alloc(count);
    conv2d_backward(av, p.w, gy, ga.data(), gw, gb, p.conv);
    recomputed = Buffer();
    if (silu)
      cpu::groupnorm_silu_backward<T>(in.x, p.gamma, p.beta, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
    else
      cpu::groupnorm_backward<T>(in.x, p.gamma, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
  }
  static void normalise(const NormSiluConv<T>& p, bool silu, const T* x, T* a, T* mean, T* rstd) {
    if (silu)
      cpu::groupnorm_silu_forward<T>(x, p.gamma, p.beta, a, mean, rstd, p.norm);
    else
      cpu::groupnorm_forward<T>(x, p.gamma, p.beta, a, mean, rstd, p.norm);
  }

  static constexpr auto groupnorm_forward = cpu::groupnorm_forward<T>;
  static constexpr auto groupnorm_backward = cpu::groupnorm_backward<T>;
  static constexpr auto groupnorm_silu_forward = cpu::groupnorm_silu_forward<T>;
  static constexpr auto groupnorm_silu_backward = cpu::groupnorm_silu_backward<T>;
  static constexpr auto silu_forward = cpu::silu_forward<T>;
  static constexpr auto silu_backward = cpu::silu_backward<T>;
  static constexpr auto linear_forward = cpu::linear_forward<T>;
  static constexpr auto linear_backward = cpu::linear_backward<T>;
  static constexpr auto time_embedding = cpu::time_embedding<T>;
  static constexpr auto attention_forward = cpu::attention_forward<T>;
  static constexpr auto attention_backward = cpu::attention_backward<T>;
  static constexpr auto upsample2_forward = cpu::upsample2_forward<T>;
  static constexpr auto upsample2_backward = cpu::upsample2_backward<T>;
};

template <class T>
using UNetCpu = UNetGraph<CpuOps<T>>;

}  // namespace ks::cpu

namespace ks {
extern template class UNetGraph<cpu::CpuOps<float>>;
extern template class UNetGraph<cpu::CpuOps<double>>;
}  // namespace ks
