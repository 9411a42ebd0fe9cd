// The UNet's forward and backward passes, written once over a backend `Ops` that supplies buffers
// and the ops (cpu/unet.cpp: std::vector and the reference ops, float or double; cuda/unet.cu: device
// buffers and kernels). Forward keeps a tape of what backward needs; backward adds the parameter
// gradients into a flat gradient array, so several forward/backward pairs accumulate into one step.
//
// Besides buffers and single ops, an Ops supplies the block's convolutions as entry points that say
// what the convolution reads (ConvInput below: a plain tensor, a channel concat of two, or a nearest-2x
// upsample), so that a backend can gather its input in the convolution's loader instead of writing it:
//   static bool gathers(Precision p)
//     true: the graph hands concats (the decoder's skips) and upsamples to the entry points below as
//     ConvInput{x, x2, c1} / {x, upsample}; false: the graph materialises them (concat_channels,
//     upsample2_forward) and passes plain inputs only (the CPU).
//   conv_forward(const ConvInput<T>& in, const T* w, const T* b, T* y, const Conv2dShape& s,
//                const ConvEpilogue<T>& e)
//     y = conv(in) + b + e.chan_bias + e.residual; s is the conv on the gathered input (the upsampled
//     size with upsample).
//   conv_backward(const ConvInput<T>& in, const T* w, const T* gy, T* gx, T* gx2, T* gw, T* gb,
//                 const Conv2dShape& s)
//     gx = dL/dx at x's size (overwritten, skipped when null; channels [0, c1) with a concat, gx2 the
//     rest); gw and gb accumulate (+=).
//   norm_conv_forward(const NormSiluConv<T>& p, bool silu, const ConvInput<T>& in, T* mean, T* rstd,
//                     Buffer& a, T* y, const ConvEpilogue<T>& e)
//     y = conv(act(groupnorm(in))) + b + e.chan_bias + e.residual, act = SiLU (ResBlocks, the output
//     head) or the identity (silu false: attention's qkv); writes mean and rstd [n * groups] (over the
//     concatenated channels); `a` (empty on entry) is the backend's choice: filled with
//     act(groupnorm(in)) [n, cin, h, w] for backward, or left empty when the backend never materialises
//     it. in.upsample is never set here.
//   norm_conv_backward(const NormSiluConv<T>& p, bool silu, const ConvInput<T>& in, const T* mean,
//                      const T* rstd, const Buffer& a, const T* gy, T* gx, T* gx2, T* ggamma, T* gbeta,
//                      T* gw, T* gb)
//     gx (and gx2 with a concat, split as in conv_backward) = dL/din overwritten (not aliasing gy); the
//     four parameter gradients accumulate (+=); an empty `a` is recomputed from in and the statistics.
//
// Stage timing (issue #13 item 6): forward and backward take an optional StageTimer
// (kintsugi/stage_timer.h) and mark the begin and end of each stage on it; the Ops are not involved, so
// every backend's graph is the same code with or without a timer, and without one (null) nothing runs.
//
// Optional (detected: a backend without them, the CPU, never sees them): the folds of issue #13, where
//   static bool folds(Precision p)
// says yes (the CUDA tensor-core path). GroupNorm statistics then come from partial statistics that the
// producing conv writes in its epilogue (`stats`, a buffer from stats_alloc(n, hw, channels)), not from a
// pass over the activation; and the GroupNorm + SiLU backward adds the residual gradient, splits a
// concat's gradient and forms the time projection's and the producing conv's bias gradients as it
// writes dL/dx (NormBackwardFolds below):
//   stats_alloc(int64_t n, int64_t hw, int64_t channels) -> Buffer
//   conv_forward_folded(in, w, b, y, s, e, T* stats)              conv_forward + partials of y
//   norm_conv_forward_folded(p, silu, in, const T* part, const T* part2, mean, rstd, a, y, e, T* stats)
//     mean/rstd folded from part (channels [0, in.c1) with a concat, else all) and part2 (the skip's),
//     computed from in where part is null; stats: partials of y
//   norm_conv_backward_folded(p, silu, in, mean, rstd, a, gy, gx, gx2, ggamma, gbeta, gw, gb,
//                             const NormBackwardFolds<T>& f)    gb null: the conv's bias gradient skipped
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>
#include "kintsugi/nn_shapes.h"
#include "kintsugi/stage_timer.h"
#include "kintsugi/unet.h"

namespace ks {

// What a convolution reads: its logical input [n, cin, h, w] (the conv shape's) is x, or x [n, c1, h, w]
// followed by x2 [n, cin - c1, h, w] along the channels (a concat never written), or, with upsample,
// x [n, cin, h / 2, w / 2] repeated 2x2 (nearest). Concat and upsample are never combined by the graph.
template <class T>
struct ConvInput {
  const T* x = nullptr;
  const T* x2 = nullptr;  // null: x holds all cin channels
  int64_t c1 = 0;
  bool upsample = false;
  bool plain() const { return x2 == nullptr && !upsample; }
};

// What the GroupNorm + SiLU backward folds into the pass that writes dL/dx (backends with Ops::folds):
// dL/dx = addend + (its own gradient) (addend2: the split's second part, laid out as gx2; either may alias
// the output: +=), channel_sums [n, c] = the sums over pixels of dL/dx (overwritten), bias_grad [c] += their
// sum over the batch (the bias gradient of the conv that produced x).
template <class T>
struct NormBackwardFolds {
  const T* addend = nullptr;
  const T* addend2 = nullptr;
  T* channel_sums = nullptr;
  T* bias_grad = nullptr;
  bool any() const { return addend || addend2 || channel_sums || bias_grad; }
};

// Whether Ops has the folds (a static folds(Precision)); the CPU's Ops does not.
template <class O, class = void>
struct OpsHasFolds : std::false_type {};
template <class O>
struct OpsHasFolds<O, std::void_t<decltype(O::folds(Precision::fp32))>> : std::true_type {};

template <class Ops>
class UNetGraph {
 public:
  using T = typename Ops::Scalar;
  using Buf = typename Ops::Buffer;

  struct Tape {
    int64_t n = 0;
    bool complete = true;   // false after an inference forward: nothing for backward
    Buf x;                  // the input
    Buf emb, l1, temb, st;  // time path: embedding, linear1, linear2 output, silu(temb)
    Buf h0;                 // conv_in output (a skip)
    // What forward saves per stage. With Ops::gathers (the tensor-core path) no concat, no upsampled
    // input and no normalised activation is written: a ResBlock keeps in, h and the four statistics;
    // attention in, its statistics, qkv, attn and o; Up its input only.
    struct Stage {
      Buf in;                     // the stage's input: after the concat on the up path, or with a gathered concat
                                  // its first part (the running activation; the rest is *skip)
      const Buf* skip = nullptr;  // gathered concat: the skip it reads (a down stage's `pushed`, or h0)
      Buf u1;                     // Attention: GroupNorm's output (empty when the backend did not write it)
      Buf a1, h, a2;              // ResBlock: silu(norm1(in)), conv1 + time bias, silu(norm2(h)); a1, a2 may be empty
      Buf mean1, rstd1, mean2, rstd2;
      Buf qkv, attn, o;  // Attention
      Buf up;            // Upsample, without Ops::gathers: the upsampled input of its conv
      Buf pushed;        // down path: the output, kept as a skip for the up path
    };
    std::vector<Stage> stages;
    Buf hout, aout, mout, rout;  // output head (aout may be empty, as a1)
  };

  explicit UNetGraph(const UNetConfig& config)
      : plan_(unet_plan(config)), gathers_(Ops::gathers(config.precision)), folds_(folds_on(config.precision)) {}
  const UNetPlan& plan() const { return plan_; }

  // x: [n, inChannels, r, r]; t: [n]; out: [n, outChannels, r, r] (all in the backend's memory).
  // cond (optional, [n, 4C]) is added to the time embedding before its SiLU: a condition embedding
  // computed outside the graph (the transfer method's encoder h(y), docs/transfer.md).
  // keep = false is inference: each stage's activations are freed as soon as the next stage has
  // read them (only the skips survive until their concat), so sampling holds a fraction of a
  // training step's memory; the returned tape is then empty (`n` only) and backward refuses it.
  // timer (optional, kintsugi/stage_timer.h): marks the begin and end of each stage; null, the default,
  // costs one pointer test per stage.
  std::unique_ptr<Tape> forward(const T* P, const T* x, const T* t, int64_t n, T* out, bool keep = true,
                                const T* cond = nullptr, StageTimer* timer = nullptr) const;
  // G += dL/dparams for dL/dout = gout; gx (if not null) = dL/dx; gcond (if not null) = dL/dcond.
  void backward(const T* P, const Tape& tape, const T* gout, T* G, T* gx, T* gcond = nullptr,
                StageTimer* timer = nullptr) const;

 private:
  using Conv = UNetPlan::Conv;
  using Norm = UNetPlan::Norm;

  static Conv2dShape conv_shape(const Conv& c, int64_t n, int64_t size) {
    return Conv2dShape{n, c.cin, size, size, c.cout, c.k, c.stride, c.precision};
  }
  // size: the size of what the conv reads (the upsampled size with in.upsample).
  static constexpr bool kHasFolds = OpsHasFolds<Ops>::value;
  static bool folds_on(Precision p) {
    if constexpr (kHasFolds)
      return Ops::folds(p);
    else
      return false;
  }
  // The partial statistics of a conv's output [n, c, hw] for the next GroupNorm (folds only; else empty).
  Buf stats_buf(int64_t n, int64_t hw, int64_t c) const {
    if constexpr (kHasFolds)
      if (folds_) return Ops::stats_alloc(n, hw, c);
    return Buf();
  }
  // Partial statistics of an activation (folds): shared, since h and the skip pushed from it are copies.
  using Part = std::shared_ptr<Buf>;
  Part new_part(int64_t n, int64_t hw, int64_t c) const {
    if (!folds_) return nullptr;
    return std::make_shared<Buf>(stats_buf(n, hw, c));
  }
  static T* pp(const Part& p) { return p ? Ops::ptr(*p) : nullptr; }
  // stats: non-null (folds only), the conv also writes the partial statistics of y.
  static void conv_fwd(const T* P, const Conv& c, const ConvInput<T>& in, T* y, int64_t n, int64_t size,
                       const T* residual = nullptr, T* stats = nullptr) {
    ConvEpilogue<T> e;
    e.residual = residual;
    if constexpr (kHasFolds)
      if (stats != nullptr) return Ops::conv_forward_folded(in, P + c.w, P + c.b, y, conv_shape(c, n, size), e, stats);
    Ops::conv_forward(in, P + c.w, P + c.b, y, conv_shape(c, n, size), e);
  }
  static void conv_bwd(const T* P, const Conv& c, const ConvInput<T>& in, const T* gy, T* gx, T* G, int64_t n,
                       int64_t size, T* gx2 = nullptr) {
    Ops::conv_backward(in, P + c.w, gy, gx, gx2, G + c.w, G + c.b, conv_shape(c, n, size));
  }
  // The fused pair's description: parameter pointers into P (gradients go to the same offsets of G).
  static NormSiluConv<T> norm_conv(const T* P, const Norm& m, const Conv& c, int64_t n, int64_t size) {
    return NormSiluConv<T>{P + m.w, P + m.b, GroupNormShape{n, m.c, size * size, m.groups},
                           P + c.w, P + c.b, Conv2dShape{n, c.cin, size, size, c.cout, c.k, c.stride, c.precision}};
  }
  // silu false: GroupNorm alone before the conv (attention's qkv).
  // Where the GroupNorm's statistics and the conv's output statistics go (folds only; all null otherwise):
  // part / part2 the partials of the normalised input (part2: a concat's skip), stats the partials of y.
  struct StatsIo {
    const T* part = nullptr;
    const T* part2 = nullptr;
    T* stats = nullptr;
  };
  static void norm_conv_fwd(const T* P, const Norm& m, const Conv& c, const ConvInput<T>& in, Buf& mean, Buf& rstd,
                            Buf& a, T* y, int64_t n, int64_t size, const T* chan_bias = nullptr,
                            const T* residual = nullptr, bool silu = true, const StatsIo& io = StatsIo{}) {
    mean = Ops::alloc(n * m.groups);
    rstd = Ops::alloc(n * m.groups);
    ConvEpilogue<T> e;
    e.chan_bias = chan_bias;
    e.residual = residual;
    if constexpr (kHasFolds)
      if (io.part != nullptr || io.stats != nullptr)
        return Ops::norm_conv_forward_folded(norm_conv(P, m, c, n, size), silu, in, io.part, io.part2, Ops::ptr(mean),
                                             Ops::ptr(rstd), a, y, e, io.stats);
    Ops::norm_conv_forward(norm_conv(P, m, c, n, size), silu, in, Ops::ptr(mean), Ops::ptr(rstd), a, y, e);
  }
  // conv_bias false: the conv's bias gradient is formed elsewhere (NormBackwardFolds::bias_grad of the
  // GroupNorm that reads its output), folds only.
  static void norm_conv_bwd(const T* P, const Norm& m, const Conv& c, const ConvInput<T>& in, const Buf& mean,
                            const Buf& rstd, const Buf& a, const T* gy, T* gx, T* G, int64_t n, int64_t size,
                            T* gx2 = nullptr, bool silu = true, const NormBackwardFolds<T>& f = NormBackwardFolds<T>{},
                            bool conv_bias = true) {
    if constexpr (kHasFolds)
      if (f.any() || !conv_bias)
        return Ops::norm_conv_backward_folded(norm_conv(P, m, c, n, size), silu, in, Ops::ptr(mean), Ops::ptr(rstd), a,
                                              gy, gx, gx2, G + m.w, G + m.b, G + c.w, conv_bias ? G + c.b : nullptr, f);
    Ops::norm_conv_backward(norm_conv(P, m, c, n, size), silu, in, Ops::ptr(mean), Ops::ptr(rstd), a, gy, gx, gx2,
                            G + m.w, G + m.b, G + c.w, G + c.b);
  }
  void res_backward_folded(const T* P, const UNetPlan::Res& r, const UNetPlan::Stage& st, const typename Tape::Stage& s,
                           const ConvInput<T>& src, const Buf& g, Buf& gin, Buf& gskip, bool gathered, T* G, Buf& g_st,
                           const T* st_act, int64_t n) const;
  static ConvInput<T> plain(const T* x) {
    ConvInput<T> in;
    in.x = x;
    return in;
  }
  // Whether stage st reads its concat through the gather (Ops::gathers) rather than a written copy: a
  // ResBlock with a skip conv (one without would need the concat as its residual: then it is written).
  bool gathered_concat(const UNetPlan::Stage& st) const {
    return st.concat_before && gathers_ && st.kind == UNetPlan::Kind::Res &&
           plan_.res[static_cast<size_t>(st.index)].has_skip;
  }
  static Buf silu_of(const Buf& x, int64_t count) {
    Buf y = Ops::alloc(count);
    Ops::silu_forward(Ops::ptr(x), Ops::ptr(y), count);
    return y;
  }
  static Buf copy_of(const T* x, int64_t count) {
    Buf y = Ops::alloc(count);
    Ops::copy(x, Ops::ptr(y), count);
    return y;
  }

  UNetPlan plan_;
  bool gathers_;  // Ops::gathers(precision): concats and upsamples are read by the convs, never written
  bool folds_;    // Ops::folds(precision): statistics from the epilogues, the folded GroupNorm backward
};

template <class Ops>
auto UNetGraph<Ops>::forward(const T* P, const T* x, const T* t, int64_t n, T* out, bool keep, const T* cond,
                             StageTimer* timer) const -> std::unique_ptr<Tape> {
  const UNetConfig& cfg = plan_.config;
  const int64_t C = cfg.channels, TC = 4 * C, R = cfg.resolution;
  const int head_entry = StageTimer::entries_for(plan_.stages.size()) - 1;
  constexpr StagePhase fwd = StagePhase::Forward;
  auto tape = std::make_unique<Tape>();
  tape->n = n;
  tape->complete = keep;
  stage_mark(timer, 0, fwd, true);  // the time path (the input's copy for the tape counts here too)
  if (keep) tape->x = copy_of(x, n * cfg.in_channels * R * R);

  // Time path: emb -> linear1 -> silu -> linear2 = temb; each ResBlock projects silu(temb).
  tape->emb = Ops::alloc(n * C);
  Ops::time_embedding(t, Ops::ptr(tape->emb), n, C);
  tape->l1 = Ops::alloc(n * TC);
  Ops::linear_forward(Ops::ptr(tape->emb), P + plan_.time1.w, P + plan_.time1.b, Ops::ptr(tape->l1), n, C, TC);
  Buf s1 = silu_of(tape->l1, n * TC);
  tape->temb = Ops::alloc(n * TC);
  Ops::linear_forward(Ops::ptr(s1), P + plan_.time2.w, P + plan_.time2.b, Ops::ptr(tape->temb), n, TC, TC);
  if (cond) Ops::add_inplace(Ops::ptr(tape->temb), cond, n * TC);
  tape->st = silu_of(tape->temb, n * TC);
  stage_mark(timer, 0, fwd, false);

  stage_mark(timer, 1, fwd, true);  // conv_in
  tape->h0 = Ops::alloc(n * C * R * R);
  // With the folds, every conv whose output is normalised next writes its partial statistics (hpart: of
  // h; skip_parts: of the skips), and the GroupNorm folds them instead of reading the activation.
  Part hpart = new_part(n, R * R, C);
  conv_fwd(P, plan_.conv_in, plain(x), Ops::ptr(tape->h0), n, R, nullptr, pp(hpart));
  std::vector<const Buf*> skips{&tape->h0};
  std::vector<Part> skip_parts{hpart};
  Buf h = copy_of(Ops::ptr(tape->h0), n * C * R * R);
  tape->stages.resize(plan_.stages.size());
  stage_mark(timer, 1, fwd, false);

  for (size_t si = 0; si < plan_.stages.size(); ++si) {
    const UNetPlan::Stage& st = plan_.stages[si];
    auto& s = tape->stages[si];
    stage_mark(timer, static_cast<int>(si) + 2, fwd, true);  // the whole iteration: concat, stage, skip push
    const int64_t size = st.size, hw = size * size;
    ConvInput<T> src;  // what the stage's convs read: s.in, or (s.in, skip) gathered
    StatsIo nio;       // the partial statistics of what the stage normalises (folds)
    nio.part = pp(hpart);
    Part skip_part;  // held for this stage: nio.part2 points into it
    if (st.concat_before) {
      skip_part = std::move(skip_parts.back());
      skip_parts.pop_back();
      // A written concat folds nothing (its partials would need c1): its GroupNorm reads it.
      if (gathered_concat(st))
        nio.part2 = pp(skip_part);
      else
        nio.part = nullptr;
    }
    if (gathered_concat(st)) {
      s.skip = skips.back();
      skips.pop_back();
      s.in = std::move(h);
      src.x = Ops::ptr(s.in);
      src.x2 = Ops::ptr(*s.skip);
      src.c1 = st.cin - st.skip_c;
    } else if (st.concat_before) {
      const Buf& skip = *skips.back();
      skips.pop_back();
      s.in = Ops::alloc(n * st.cin * hw);
      Ops::concat_channels(Ops::ptr(h), Ops::ptr(skip), Ops::ptr(s.in), n, st.cin - st.skip_c, st.skip_c, hw);
      src.x = Ops::ptr(s.in);
    } else {
      s.in = std::move(h);
      src.x = Ops::ptr(s.in);
    }
    const T* in = Ops::ptr(s.in);  // all of the input unless the concat is gathered
    switch (st.kind) {
      case UNetPlan::Kind::Res: {
        const auto& r = plan_.res[static_cast<size_t>(st.index)];
        // gn_silu -> conv1 (+ b + time bias) -> gn_silu -> conv2 (+ b + residual), the additions in
        // the convolutions' output pass.
        Buf tp = Ops::alloc(n * st.cout);
        Ops::linear_forward(Ops::ptr(tape->st), P + r.time.w, P + r.time.b, Ops::ptr(tp), n, TC, st.cout);
        s.h = Ops::alloc(n * st.cout * hw);
        Part hp = new_part(n, hw, st.cout);  // conv1's output's partials, for norm2
        nio.stats = pp(hp);
        norm_conv_fwd(P, r.norm1, r.conv1, src, s.mean1, s.rstd1, s.a1, Ops::ptr(s.h), n, size, Ops::ptr(tp), nullptr,
                      true, nio);
        Buf sk;  // the residual: the input, or the 1x1 skip convolution's output computed first
        if (r.has_skip) {
          sk = Ops::alloc(n * st.cout * hw);
          conv_fwd(P, r.skip, src, Ops::ptr(sk), n, size);
        }
        h = Ops::alloc(n * st.cout * hw);
        hpart = new_part(n, hw, st.cout);
        StatsIo io2;
        io2.part = pp(hp), io2.stats = pp(hpart);
        norm_conv_fwd(P, r.norm2, r.conv2, plain(Ops::ptr(s.h)), s.mean2, s.rstd2, s.a2, Ops::ptr(h), n, size, nullptr,
                      r.has_skip ? Ops::ptr(sk) : in, true, io2);
        break;
      }
      case UNetPlan::Kind::Attn: {
        const auto& a = plan_.attn[static_cast<size_t>(st.index)];
        // groupnorm -> qkv conv (the normalisation in its loader where the backend can), attention,
        // proj conv with the residual in its output pass.
        s.qkv = Ops::alloc(n * 3 * a.c * hw);
        norm_conv_fwd(P, a.norm, a.qkv, src, s.mean1, s.rstd1, s.u1, Ops::ptr(s.qkv), n, size, nullptr, nullptr,
                      /*silu=*/false, nio);
        s.attn = Ops::alloc(n * hw * hw);
        s.o = Ops::alloc(n * a.c * hw);
        Ops::attention_forward(Ops::ptr(s.qkv), Ops::ptr(s.attn), Ops::ptr(s.o), n, a.c, hw);
        h = Ops::alloc(n * a.c * hw);
        hpart = new_part(n, hw, a.c);
        conv_fwd(P, a.proj, plain(Ops::ptr(s.o)), Ops::ptr(h), n, size, in, pp(hpart));
        break;
      }
      case UNetPlan::Kind::Down: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        h = Ops::alloc(n * c.cout * hw / 4);
        hpart = new_part(n, hw / 4, c.cout);
        conv_fwd(P, c, src, Ops::ptr(h), n, size, nullptr, pp(hpart));
        break;
      }
      case UNetPlan::Kind::Up: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        h = Ops::alloc(n * c.cout * hw * 4);
        ConvInput<T> up = plain(in);
        if (gathers_) {
          up.upsample = true;  // the conv reads in(y / 2, x / 2): nothing written
        } else {
          s.up = Ops::alloc(n * c.cin * hw * 4);
          Ops::upsample2_forward(in, Ops::ptr(s.up), n * c.cin, size, size);
          up.x = Ops::ptr(s.up);
        }
        hpart = new_part(n, hw * 4, c.cout);
        conv_fwd(P, c, up, Ops::ptr(h), n, 2 * size, nullptr, pp(hpart));
        break;
      }
    }
    if (st.push_after) {
      const int64_t count = st.kind == UNetPlan::Kind::Down ? n * st.cout * hw / 4 : n * st.cout * hw;
      s.pushed = copy_of(Ops::ptr(h), count);
      skips.push_back(&s.pushed);
      skip_parts.push_back(hpart);
    }
    if (!keep) {
      // Everything of this stage but its skip is dead: h (the next stage's input) is a separate
      // buffer. Stage addresses are stable (the vector was sized before the loop), so the pointer in
      // `skips` stays valid.
      Buf pushed = std::move(s.pushed);
      s = typename Tape::Stage{};
      s.pushed = std::move(pushed);
    }
    stage_mark(timer, static_cast<int>(si) + 2, fwd, false);
  }

  // Output head: out.conv(silu(out.norm(h))).
  tape->hout = std::move(h);
  stage_mark(timer, head_entry, fwd, true);
  StatsIo head;
  head.part = pp(hpart);
  norm_conv_fwd(P, plan_.out_norm, plan_.out_conv, plain(Ops::ptr(tape->hout)), tape->mout, tape->rout, tape->aout, out,
                n, R, nullptr, nullptr, true, head);
  stage_mark(timer, head_entry, fwd, false);
  if (!keep) {
    auto empty = std::make_unique<Tape>();
    empty->n = n;
    empty->complete = false;
    return empty;
  }
  return tape;
}

template <class Ops>
void UNetGraph<Ops>::backward(const T* P, const Tape& tape, const T* gout, T* G, T* gx, T* gcond,
                              StageTimer* timer) const {
  const UNetConfig& cfg = plan_.config;
  const int64_t n = tape.n, C = cfg.channels, TC = 4 * C, R = cfg.resolution, HW = R * R;
  const int head_entry = StageTimer::entries_for(plan_.stages.size()) - 1;
  constexpr StagePhase bwd = StagePhase::Backward;
  stage_mark(timer, head_entry, bwd, true);  // with the zeroing of the time path's gradient sum
  Buf g_st = Ops::alloc(n * TC);             // dL/d silu(temb), summed over every ResBlock
  Ops::fill_zero(Ops::ptr(g_st), n * TC);

  // Output head.
  const int64_t cf = plan_.out_norm.c;
  Buf g = Ops::alloc(n * cf * HW);
  norm_conv_bwd(P, plan_.out_norm, plan_.out_conv, plain(Ops::ptr(tape.hout)), tape.mout, tape.rout, tape.aout, gout,
                Ops::ptr(g), G, n, R);
  int64_t gcount = n * cf * HW;  // elements of g
  stage_mark(timer, head_entry, bwd, false);

  std::vector<std::pair<Buf, int64_t>> gskips;  // gradients of the skips, in the order the up path popped them
  for (size_t si = plan_.stages.size(); si-- > 0;) {
    const UNetPlan::Stage& st = plan_.stages[si];
    const auto& s = tape.stages[si];
    const int64_t size = st.size, hw = size * size;
    stage_mark(timer, static_cast<int>(si) + 2, bwd, true);  // with the skip gradient's add and the concat's split
    if (st.push_after) {
      Ops::add_inplace(Ops::ptr(g), Ops::ptr(gskips.back().first), gcount);
      gskips.pop_back();
    }
    const T* in = Ops::ptr(s.in);
    const bool gathered = gathered_concat(st);
    const int64_t cskip = st.skip_c, c1 = st.cin - cskip;
    ConvInput<T> src = plain(in);
    Buf gin, gskip;  // the input's gradient; with a gathered concat split in two: gin [n, c1], gskip
    if (gathered) {
      src.x2 = Ops::ptr(*s.skip);
      src.c1 = c1;
      gin = Ops::alloc(n * c1 * hw);
      gskip = Ops::alloc(n * cskip * hw);
    } else {
      gin = Ops::alloc(n * st.cin * hw);
    }
    switch (st.kind) {
      case UNetPlan::Kind::Res: {
        const auto& r = plan_.res[static_cast<size_t>(st.index)];
        if (folds_) {
          res_backward_folded(P, r, st, s, src, g, gin, gskip, gathered, G, g_st, Ops::ptr(tape.st), n);
          break;
        }
        if (r.has_skip)
          conv_bwd(P, r.skip, src, Ops::ptr(g), Ops::ptr(gin), G, n, size, gathered ? Ops::ptr(gskip) : nullptr);
        else
          Ops::copy(Ops::ptr(g), Ops::ptr(gin), n * st.cin * hw);
        // conv2 <- gn_silu(norm2)
        Buf gh1 = Ops::alloc(n * st.cout * hw);
        norm_conv_bwd(P, r.norm2, r.conv2, plain(Ops::ptr(s.h)), s.mean2, s.rstd2, s.a2, Ops::ptr(g), Ops::ptr(gh1), G,
                      n, size);
        // time projection: dL/dtp[b, c] = sum over pixels
        Buf gtp = Ops::alloc(n * st.cout);
        Ops::channel_sums(Ops::ptr(gh1), Ops::ptr(gtp), n, st.cout, hw);
        Buf gst = Ops::alloc(n * TC);
        Ops::linear_backward(Ops::ptr(tape.st), P + r.time.w, Ops::ptr(gtp), Ops::ptr(gst), G + r.time.w, G + r.time.b,
                             n, TC, st.cout);
        Ops::add_inplace(Ops::ptr(g_st), Ops::ptr(gst), n * TC);
        // conv1 <- gn_silu(norm1)
        if (gathered) {
          Buf gx1 = Ops::alloc(n * c1 * hw), gx1s = Ops::alloc(n * cskip * hw);
          norm_conv_bwd(P, r.norm1, r.conv1, src, s.mean1, s.rstd1, s.a1, Ops::ptr(gh1), Ops::ptr(gx1), G, n, size,
                        Ops::ptr(gx1s));
          Ops::add_inplace(Ops::ptr(gin), Ops::ptr(gx1), n * c1 * hw);
          Ops::add_inplace(Ops::ptr(gskip), Ops::ptr(gx1s), n * cskip * hw);
        } else {
          Buf gx1 = Ops::alloc(n * st.cin * hw);
          norm_conv_bwd(P, r.norm1, r.conv1, src, s.mean1, s.rstd1, s.a1, Ops::ptr(gh1), Ops::ptr(gx1), G, n, size);
          Ops::add_inplace(Ops::ptr(gin), Ops::ptr(gx1), n * st.cin * hw);
        }
        break;
      }
      case UNetPlan::Kind::Attn: {
        const auto& a = plan_.attn[static_cast<size_t>(st.index)];
        Buf go = Ops::alloc(n * a.c * hw);
        conv_bwd(P, a.proj, plain(Ops::ptr(s.o)), Ops::ptr(g), Ops::ptr(go), G, n, size);
        Buf gqkv = Ops::alloc(n * 3 * a.c * hw);
        Ops::attention_backward(Ops::ptr(s.qkv), Ops::ptr(s.attn), Ops::ptr(go), Ops::ptr(gqkv), n, a.c, hw);
        norm_conv_bwd(P, a.norm, a.qkv, src, s.mean1, s.rstd1, s.u1, Ops::ptr(gqkv), Ops::ptr(gin), G, n, size, nullptr,
                      /*silu=*/false);
        Ops::add_inplace(Ops::ptr(gin), Ops::ptr(g), n * a.c * hw);  // the residual
        break;
      }
      case UNetPlan::Kind::Down:
        conv_bwd(P, plan_.resample[static_cast<size_t>(st.index)], src, Ops::ptr(g), Ops::ptr(gin), G, n, size);
        break;
      case UNetPlan::Kind::Up: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        if (gathers_) {  // the conv's backward folds the upsample's (gx at in's size)
          src.upsample = true;
          conv_bwd(P, c, src, Ops::ptr(g), Ops::ptr(gin), G, n, 2 * size);
        } else {
          Buf gup = Ops::alloc(n * c.cin * hw * 4);
          conv_bwd(P, c, plain(Ops::ptr(s.up)), Ops::ptr(g), Ops::ptr(gup), G, n, 2 * size);
          Ops::upsample2_backward(Ops::ptr(gup), Ops::ptr(gin), n * c.cin, size, size);
        }
        break;
      }
    }
    if (gathered) {  // the gradient came out split: current activation, skip
      gskips.emplace_back(std::move(gskip), n * cskip * hw);
      g = std::move(gin);
      gcount = n * c1 * hw;
    } else if (st.concat_before) {
      // Split the input gradient: current activation first, then the skip.
      Buf gcur = Ops::alloc(n * c1 * hw);
      gskip = Ops::alloc(n * cskip * hw);
      Ops::split_channels(Ops::ptr(gin), Ops::ptr(gcur), Ops::ptr(gskip), n, c1, cskip, hw);
      gskips.emplace_back(std::move(gskip), n * cskip * hw);
      g = std::move(gcur);
      gcount = n * c1 * hw;
    } else {
      g = std::move(gin);
      gcount = n * st.cin * hw;
    }
    stage_mark(timer, static_cast<int>(si) + 2, bwd, false);
  }

  // conv_in pushed its output first: its skip gradient is the last one left.
  stage_mark(timer, 1, bwd, true);
  Ops::add_inplace(Ops::ptr(g), Ops::ptr(gskips.back().first), gcount);
  gskips.pop_back();
  conv_bwd(P, plan_.conv_in, plain(Ops::ptr(tape.x)), Ops::ptr(g), gx, G, n, R);
  stage_mark(timer, 1, bwd, false);

  // Time path: silu(temb) <- linear2 <- silu <- linear1 (no gradient flows to t).
  stage_mark(timer, 0, bwd, true);
  Buf gtemb = Ops::alloc(n * TC);
  Ops::silu_backward(Ops::ptr(tape.temb), Ops::ptr(g_st), Ops::ptr(gtemb), n * TC);
  if (gcond) Ops::copy(Ops::ptr(gtemb), gcond, n * TC);  // cond was added to temb: same gradient
  Buf s1 = silu_of(tape.l1, n * TC);
  Buf gs1 = Ops::alloc(n * TC);
  Ops::linear_backward(Ops::ptr(s1), P + plan_.time2.w, Ops::ptr(gtemb), Ops::ptr(gs1), G + plan_.time2.w,
                       G + plan_.time2.b, n, TC, TC);
  Ops::silu_backward(Ops::ptr(tape.l1), Ops::ptr(gs1), Ops::ptr(gs1), n * TC);
  Ops::linear_backward(Ops::ptr(tape.emb), P + plan_.time1.w, Ops::ptr(gs1), static_cast<T*>(nullptr),
                       G + plan_.time1.w, G + plan_.time1.b, n, C, TC);
  stage_mark(timer, 0, bwd, false);
}

// A ResBlock's backward with the folds (Ops::folds): the same gradients as the composition in backward()
// but the GroupNorm + SiLU backward of norm2 also forms the time projection's gradient (channel sums of
// dL/dh) and conv1's bias gradient, and that of norm1 adds the residual's gradient (the skip conv's data
// gradient in place, or g itself) and writes a gathered concat's gradient split: no copy, add_inplace,
// channel_sums or split pass, and conv1's backward skips its bias gradient.
template <class Ops>
void UNetGraph<Ops>::res_backward_folded(const T* P, const UNetPlan::Res& r, const UNetPlan::Stage& st,
                                         const typename Tape::Stage& s, const ConvInput<T>& src, const Buf& g, Buf& gin,
                                         Buf& gskip, bool gathered, T* G, Buf& g_st, const T* st_act, int64_t n) const {
  const int64_t TC = 4 * plan_.config.channels, size = st.size, hw = size * size;
  if (r.has_skip)
    conv_bwd(P, r.skip, src, Ops::ptr(g), Ops::ptr(gin), G, n, size, gathered ? Ops::ptr(gskip) : nullptr);
  Buf gh1 = Ops::alloc(n * st.cout * hw), gtp = Ops::alloc(n * st.cout);
  NormBackwardFolds<T> f2;
  f2.channel_sums = Ops::ptr(gtp);
  f2.bias_grad = G + r.conv1.b;
  norm_conv_bwd(P, r.norm2, r.conv2, plain(Ops::ptr(s.h)), s.mean2, s.rstd2, s.a2, Ops::ptr(g), Ops::ptr(gh1), G, n,
                size, nullptr, true, f2);
  Buf gst = Ops::alloc(n * TC);
  Ops::linear_backward(st_act, P + r.time.w, Ops::ptr(gtp), Ops::ptr(gst), G + r.time.w, G + r.time.b, n, TC, st.cout);
  Ops::add_inplace(Ops::ptr(g_st), Ops::ptr(gst), n * TC);
  NormBackwardFolds<T> f1;
  f1.addend = r.has_skip ? Ops::ptr(gin) : Ops::ptr(g);  // gx = addend + ...: in place on the skip's gradient
  if (gathered) f1.addend2 = Ops::ptr(gskip);
  norm_conv_bwd(P, r.norm1, r.conv1, src, s.mean1, s.rstd1, s.a1, Ops::ptr(gh1), Ops::ptr(gin), G, n, size,
                gathered ? Ops::ptr(gskip) : nullptr, true, f1, /*conv_bias=*/false);
}

}  // namespace ks
