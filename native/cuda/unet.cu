// The UNet on a CUDA device: the shared graph (include/kintsugi/unet_graph.h) over device buffers from the
// caching allocator and the kernels of nn.h. Buffers are released back to the cache as soon as the
// graph drops them, while kernels that use them may still be queued: every buffer of a device is used
// only by that device's single stream, so a block is reused only by kernels queued after them.
#include <stdexcept>
#include <string>
#include <vector>
#include "kintsugi/unet_graph.h"
#include "common.cuh"
#include "kintsugi/backend.h"
#include "kintsugi/unet_engine.h"
#include "nn.h"
#include "mma_check.h"
#include "tc_conv.h"

namespace ks::cuda {
namespace {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t count) {
    KS_CUDA_CHECK(cudaGetDevice(&device_));
    data_ = static_cast<float*>(allocator(device_).allocate(static_cast<size_t>(count) * sizeof(float), &granted_));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(data_, o.data_);
      std::swap(granted_, o.granted_);
      std::swap(device_, o.device_);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  float* data() const { return data_; }

 private:
  void reset() {
    if (data_) allocator(device_).release(data_, granted_);  // no CUDA call: safe at any time
    data_ = nullptr;
    granted_ = 0;
  }
  float* data_ = nullptr;
  size_t granted_ = 0;
  int device_ = 0;
};

struct CudaOps {
  using Scalar = float;
  using Buffer = DeviceBuffer;

  static Buffer alloc(int64_t n) { return Buffer(n); }
  static float* ptr(Buffer& b) { return b.data(); }
  static const float* ptr(const Buffer& b) { return b.data(); }

  static void copy(const float* src, float* dst, int64_t n) {
    KS_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream()));
  }
  static void fill_zero(float* a, int64_t n) {
    KS_CUDA_CHECK(cudaMemsetAsync(a, 0, static_cast<size_t>(n) * sizeof(float), stream()));
  }

  static constexpr auto add_inplace = &ks::cuda::add_inplace;
  static constexpr auto channel_sums = &ks::cuda::channel_sums;
  static constexpr auto concat_channels = &ks::cuda::concat_channels;
  static constexpr auto split_channels = &ks::cuda::split_channels;
  static constexpr auto conv2d_forward = &ks::cuda::conv2d_forward;

  // The graph's conv entry points (unet_graph.h). On tensor cores (BF16 / TF32 operands, sm_80+) every
  // conv is tc_conv.cu's fused kernel (docs/fused-conv.md): its epilogue adds the bias, the time bias and
  // the residual; its loader gathers concats (the decoder's skips) and nearest upsamples, and applies
  // GroupNorm (+ SiLU) from scale and shift per (sample, channel), so no concat, upsampled tensor or
  // normalised activation is written, in forward or backward (the weight gradient recomputes what it
  // reads as it loads). Otherwise (FP32, the exact path) the graph writes concats and upsamples and the
  // pair is the composition of the fused ops: GroupNorm + SiLU writes a, the conv adds the epilogue.
  static bool tensor_path(Precision p) { return p != Precision::fp32 && tensor_cores_available(); }
  static bool loader_fused(const Conv2dShape& c) { return tensor_path(c.precision); }
  static bool gathers(Precision p) { return tensor_path(p); }

  static TcConvInput tc_input(const ConvInput<float>& in) {
    TcConvInput t;
    t.x = in.x, t.x2 = in.x2, t.c1 = in.c1, t.upsample = in.upsample;
    return t;
  }
  static void require_plain(const ConvInput<float>& in, const char* what) {
    if (!in.plain())
      throw std::logic_error(std::string(what) + ": a concat or upsample gather needs the tensor-core path");
  }
  static void conv_forward(const ConvInput<float>& in, const float* w, const float* b, float* y, const Conv2dShape& s,
                           const ConvEpilogue<float>& e) {
    if (!loader_fused(s)) {
      require_plain(in, "conv_forward");
      return ks::cuda::conv2d_forward_fused(in.x, w, b, y, s, e);
    }
    conv_forward_folded(in, w, b, y, s, e, nullptr);
  }
  static void conv_backward(const ConvInput<float>& in, const float* w, const float* gy, float* gx, float* gx2,
                            float* gw, float* gb, const Conv2dShape& s) {
    if (in.plain()) return ks::cuda::conv2d_backward(in.x, w, gy, gx, gw, gb, s);  // tensor cores by precision
    if (!loader_fused(s)) require_plain(in, "conv_backward");
    if (in.upsample) {
      if (in.x2 != nullptr) throw std::logic_error("conv_backward: concat and upsample together are not wired");
      // dL/da at the upsampled size, folded to x's (each x element feeds a 2x2 block of a).
      Buffer ga;
      if (gx != nullptr) ga = alloc(s.n * s.cin * s.h * s.w);
      tc_conv2d_backward_fused(tc_input(in), w, gy, ga.data(), nullptr, gw, s);
      if (gx != nullptr) upsample2_backward(ga.data(), gx, s.n * s.cin, s.h / 2, s.w / 2);
    } else {
      tc_conv2d_backward_fused(tc_input(in), w, gy, gx, gx2, gw, s);  // dL/da split at c1: no split pass
    }
    conv2d_bias_backward(gy, gb, s);
  }

  // The folds (unet_graph.h's optional entry points; docs/fused-conv.md): on the tensor-core path only.
  // Partial statistics are doubles (tc_stats_doubles) carried in a float buffer of twice the count, so the
  // graph handles them as any other buffer.
  static bool folds(Precision p) { return tensor_path(p); }
  static Buffer stats_alloc(int64_t n, int64_t hw, int64_t c) { return alloc(2 * tc_stats_doubles(n, hw, c)); }
  static double* doubles(const float* p) { return reinterpret_cast<double*>(const_cast<float*>(p)); }
  static void require_fused(const Conv2dShape& s, const char* what) {
    if (!loader_fused(s)) throw std::logic_error(std::string(what) + ": the folds need the tensor-core path");
  }
  // conv_forward on tensor cores; stats non-null: the epilogue also writes y's partial statistics.
  static void conv_forward_folded(const ConvInput<float>& in, const float* w, const float* b, float* y,
                                  const Conv2dShape& s, const ConvEpilogue<float>& e, float* stats) {
    require_fused(s, "conv_forward_folded");
    TcEpilogue ep;
    ep.bias = b, ep.channel_bias = e.chan_bias, ep.residual = e.residual, ep.stats = doubles(stats);
    tc_conv2d_forward_fused(tc_input(in), w, ep, y, s);
  }

  // scale and shift [n, cin] for the loader, from the statistics (GroupNorm's affine folded in).
  static void fold_norm(const NormSiluConv<float>& p, const float* mean, const float* rstd, Buffer& scale,
                        Buffer& shift) {
    scale = alloc(p.norm.n * p.norm.c);
    shift = alloc(p.norm.n * p.norm.c);
    groupnorm_scale_shift(mean, rstd, p.gamma, p.beta, scale.data(), shift.data(), p.norm.n, p.norm.c, p.norm.groups);
  }
  static void norm_conv_forward(const NormSiluConv<float>& p, bool silu, const ConvInput<float>& in, float* mean,
                                float* rstd, Buffer& a, float* y, const ConvEpilogue<float>& e) {
    if (in.upsample) throw std::logic_error("norm_conv_forward: no upsample before a GroupNorm");
    if (loader_fused(p.conv))
      return norm_conv_forward_folded(p, silu, in, nullptr, nullptr, mean, rstd, a, y, e, nullptr);
    require_plain(in, "norm_conv_forward");
    a = alloc(p.norm.n * p.norm.c * p.norm.hw);
    normalise(p, silu, in.x, a.data(), mean, rstd);
    ks::cuda::conv2d_forward_fused(a.data(), p.w, p.b, y, p.conv, e);
  }
  // The GroupNorm's statistics: folded from the producers' partials (part: the first in.c1 channels of a
  // gathered concat, else all; part2: the skip's), or, where part is null, by a pass over the input. The
  // conv's epilogue writes y's partials to stats (non-null). a stays empty: backward recomputes it.
  static void norm_conv_forward_folded(const NormSiluConv<float>& p, bool silu, const ConvInput<float>& in,
                                       const float* part, const float* part2, float* mean, float* rstd, Buffer& a,
                                       float* y, const ConvEpilogue<float>& e, float* stats) {
    (void)a;
    require_fused(p.conv, "norm_conv_forward_folded");
    if (in.upsample) throw std::logic_error("norm_conv_forward: no upsample before a GroupNorm");
    if (part != nullptr) {
      if ((part2 != nullptr) != (in.x2 != nullptr))
        throw std::logic_error("norm_conv_forward_folded: part2 goes with a gathered concat and only then");
      groupnorm_stats_fold(doubles(part), doubles(part2), in.x2 != nullptr ? in.c1 : p.norm.c, p.norm.n, p.norm.c,
                           p.norm.hw, p.norm.groups, p.norm.eps, mean, rstd);
    } else if (in.x2 != nullptr) {
      // The graph hands a gathered concat only with its partials (part, part2): every conv that produces
      // a skip or a stage's output writes them on this path (unet_graph.h).
      throw std::logic_error("norm_conv_forward: a gathered concat's statistics come from its partials (part, part2)");
    } else {  // statistics only (they do not depend on the SiLU)
      ks::cuda::groupnorm_silu_forward(in.x, p.gamma, p.beta, nullptr, mean, rstd, p.norm);
    }
    Buffer scale, shift;
    fold_norm(p, mean, rstd, scale, shift);
    TcConvInput tin = tc_input(in);
    tin.scale = scale.data(), tin.shift = shift.data(), tin.silu = silu;
    TcEpilogue ep;
    ep.bias = p.b, ep.channel_bias = e.chan_bias, ep.residual = e.residual, ep.stats = doubles(stats);
    tc_conv2d_forward_fused(tin, p.w, ep, y, p.conv);
  }
  static void norm_conv_backward(const NormSiluConv<float>& p, bool silu, const ConvInput<float>& in, const float* mean,
                                 const float* rstd, const Buffer& a, const float* gy, float* gx, float* gx2,
                                 float* ggamma, float* gbeta, float* gw, float* gb) {
    if (a.data() == nullptr && loader_fused(p.conv))
      return norm_conv_backward_folded(p, silu, in, mean, rstd, a, gy, gx, gx2, ggamma, gbeta, gw, gb,
                                       NormBackwardFolds<float>{});
    require_plain(in, "norm_conv_backward");
    const int64_t count = p.norm.n * p.norm.c * p.norm.hw;
    Buffer ga = alloc(count);
    Buffer recomputed;
    const float* av = a.data();
    if (av == nullptr) {  // not kept: recompute it (same kernels, same statistics)
      recomputed = alloc(count);
      Buffer m = alloc(p.norm.n * p.norm.groups), r = alloc(p.norm.n * p.norm.groups);
      normalise(p, silu, in.x, recomputed.data(), m.data(), r.data());
      av = recomputed.data();
    }
    ks::cuda::conv2d_backward(av, p.w, gy, ga.data(), gw, gb, p.conv);
    if (silu)
      ks::cuda::groupnorm_silu_backward(in.x, p.gamma, p.beta, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
    else
      ks::cuda::groupnorm_backward(in.x, p.gamma, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
  }
  // The tensor-core backward: the conv's data and weight gradients with a recomputed in the loader, its
  // bias gradient (gb null: formed elsewhere, by the folds of the GroupNorm after it), then the GroupNorm
  // (+ SiLU) backward with the folds f. A gathered concat is read from its halves and its gradient written
  // split (gx, gx2), so neither the concat nor its gradient is ever written.
  static void norm_conv_backward_folded(const NormSiluConv<float>& p, bool silu, const ConvInput<float>& in,
                                        const float* mean, const float* rstd, const Buffer& a, const float* gy,
                                        float* gx, float* gx2, float* ggamma, float* gbeta, float* gw, float* gb,
                                        const NormBackwardFolds<float>& f) {
    require_fused(p.conv, "norm_conv_backward_folded");
    if (a.data() != nullptr) throw std::logic_error("norm_conv_backward_folded: a was written (not the fused path)");
    if (in.upsample) throw std::logic_error("norm_conv_backward: no upsample before a GroupNorm");
    Buffer ga = alloc(p.norm.n * p.norm.c * p.norm.hw);  // dL/da, all cin channels (the GroupNorm reads them together)
    {
      Buffer scale, shift;
      fold_norm(p, mean, rstd, scale, shift);
      TcConvInput tin = tc_input(in);
      tin.scale = scale.data(), tin.shift = shift.data(), tin.silu = silu;
      tc_conv2d_backward_fused(tin, p.w, gy, ga.data(), nullptr, gw, p.conv);
    }
    conv2d_bias_backward(gy, gb, p.conv);  // gb null: skipped
    if (!silu) {                           // attention's qkv: the plain GroupNorm backward has no folds
      if (f.any() || in.x2 != nullptr)
        throw std::logic_error("norm_conv_backward_folded: folds or a gathered concat need the SiLU (groupnorm_silu)");
      return ks::cuda::groupnorm_backward(in.x, p.gamma, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
    }
    GnSiluBackwardFolds g;
    g.addend = f.addend, g.channel_sums = f.channel_sums, g.bias_grad = f.bias_grad;
    if (in.x2 != nullptr) g.x2 = in.x2, g.gx2 = gx2, g.c1 = in.c1, g.addend2 = f.addend2;
    ks::cuda::groupnorm_silu_backward_folded(in.x, p.gamma, p.beta, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm,
                                             g);
  }
  static void normalise(const NormSiluConv<float>& p, bool silu, const float* x, float* a, float* mean, float* rstd) {
    if (silu)
      ks::cuda::groupnorm_silu_forward(x, p.gamma, p.beta, a, mean, rstd, p.norm);
    else
      ks::cuda::groupnorm_forward(x, p.gamma, p.beta, a, mean, rstd, p.norm);
  }
  static constexpr auto conv2d_backward = &ks::cuda::conv2d_backward;
  static constexpr auto groupnorm_forward = &ks::cuda::groupnorm_forward;
  static constexpr auto groupnorm_backward = &ks::cuda::groupnorm_backward;
  static constexpr auto silu_forward = &ks::cuda::silu_forward;
  static constexpr auto silu_backward = &ks::cuda::silu_backward;
  static constexpr auto linear_forward = &ks::cuda::linear_forward;
  static constexpr auto linear_backward = &ks::cuda::linear_backward;
  static constexpr auto time_embedding = &ks::cuda::time_embedding;
  static constexpr auto attention_forward = &ks::cuda::attention_forward;
  static constexpr auto attention_backward = &ks::cuda::attention_backward;
  static constexpr auto upsample2_forward = &ks::cuda::upsample2_forward;
  static constexpr auto upsample2_backward = &ks::cuda::upsample2_backward;
};

using Graph = UNetGraph<CudaOps>;

class CudaEngine final : public UNetEngine {
 public:
  explicit CudaEngine(const UNetConfig& config) : net_(config) {}
  std::shared_ptr<void> forward(const float* P, const float* x, const float* t, int64_t n, float* out, bool keep,
                                const float* cond) override {
    return std::shared_ptr<Graph::Tape>(net_.forward(P, x, t, n, out, keep, cond));
  }
  void backward(const float* P, const void* tape, const float* gout, float* G, float* gx, float* gcond) override {
    if (!static_cast<const Graph::Tape*>(tape)->complete)
      throw std::runtime_error(
          "backward: this forward ran without a tape (inference); run forward with a tape to train");
    net_.backward(P, *static_cast<const Graph::Tape*>(tape), gout, G, gx, gcond);
  }
  int64_t tape_batch(const void* tape) const override { return static_cast<const Graph::Tape*>(tape)->n; }
  StageTimes profile(const float* P, const float* x, const float* t, int64_t n, float* out, const float* gout, float* G,
                     float* gx) override {
    EventStageTimer timer;
    {
      auto tape = net_.forward(P, x, t, n, out, true, nullptr, &timer);
      net_.backward(P, *tape, gout, G, gx, nullptr, &timer);
    }
    return timer.result(StageTimer::entries_for(net_.plan().stages.size()));
  }

 private:
  // A cudaEvent per mark, recorded on the device's stream (the one stream every kernel of the graph runs
  // on), so an interval is the time the device spent from the stage's first queued operation to its last,
  // launch gaps included. Events are created here, only while profiling (a training step makes none),
  // and destroyed with the timer, after the elapsed times were read (which waits for the last event).
  class EventStageTimer final : public StageTimer {
   public:
    ~EventStageTimer() override {
      for (cudaEvent_t e : events_) cudaEventDestroy(e);  // no throw from a destructor: errors ignored
    }

   private:
    void stamp(size_t i) override {
      cudaEvent_t e = nullptr;
      KS_CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
      if (events_.size() != i + 1) throw std::logic_error("stage timer: events out of step with the marks");
      KS_CUDA_CHECK(cudaEventRecord(e, stream()));
    }
    double elapsed_ms(size_t a, size_t b) override {
      if (!synced_) {
        KS_CUDA_CHECK(cudaEventSynchronize(events_.back()));
        synced_ = true;
      }
      float ms = 0;
      KS_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[a], events_[b]));
      return ms;
    }
    std::vector<cudaEvent_t> events_;
    bool synced_ = false;
  };

  Graph net_;
};

}  // namespace

std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config) { return std::make_unique<CudaEngine>(config); }

}  // namespace ks::cuda
