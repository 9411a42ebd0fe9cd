// The UNet on a CUDA device: the shared graph (include/kintsugi/unet_graph.h) over device buffers from the
// caching allocator and the kernels of nn.h. Buffers are released back to the cache as soon as the
// graph drops them, while kernels that use them may still be queued: every buffer of a device is used
// only by that device's single stream, so a block is reused only by kernels queued after them.
#include <stdexcept>
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

  // The ResBlock's pair (unet_graph.h). On tensor cores (BF16 / TF32 operands, sm_80+) the GroupNorm
  // + SiLU lives in the conv's operand loader (tc_conv.cu, docs/fused-conv.md): a pass for the
  // statistics, scale and shift per (sample, channel), then one conv that reads x, and a is never
  // written, in forward or backward (the weight gradient recomputes it as it loads). Otherwise by
  // composition of the fused ops: GroupNorm + SiLU writes a (kept for the weight gradient), the
  // convolution adds the epilogue in its store.
  static bool loader_fused(const Conv2dShape& c) { return c.precision != Precision::fp32 && tensor_cores_available(); }
  // scale and shift [n, cin] for the loader, from the statistics (GroupNorm's affine folded in).
  static void fold_norm(const NormSiluConv<float>& p, const float* mean, const float* rstd, Buffer& scale,
                        Buffer& shift) {
    scale = alloc(p.norm.n * p.norm.c);
    shift = alloc(p.norm.n * p.norm.c);
    groupnorm_scale_shift(mean, rstd, p.gamma, p.beta, scale.data(), shift.data(), p.norm.n, p.norm.c, p.norm.groups);
  }
  static void norm_silu_conv_forward(const NormSiluConv<float>& p, const float* x, float* mean, float* rstd, Buffer& a,
                                     float* y, const ConvEpilogue<float>& e) {
    if (loader_fused(p.conv)) {
      ks::cuda::groupnorm_silu_forward(x, p.gamma, p.beta, nullptr, mean, rstd, p.norm);  // statistics only
      Buffer scale, shift;
      fold_norm(p, mean, rstd, scale, shift);
      TcConvInput in;
      in.x = x, in.scale = scale.data(), in.shift = shift.data();
      TcEpilogue ep;
      ep.bias = p.b, ep.channel_bias = e.chan_bias, ep.residual = e.residual;
      tc_conv2d_forward_fused(in, p.w, ep, y, p.conv);
      return;  // a stays empty: backward recomputes it in the loader
    }
    a = alloc(p.norm.n * p.norm.c * p.norm.hw);
    ks::cuda::groupnorm_silu_forward(x, p.gamma, p.beta, a.data(), mean, rstd, p.norm);
    ks::cuda::conv2d_forward_fused(a.data(), p.w, p.b, y, p.conv, e);
  }
  static void norm_silu_conv_backward(const NormSiluConv<float>& p, const float* x, const float* mean,
                                      const float* rstd, const Buffer& a, const float* gy, float* gx, float* ggamma,
                                      float* gbeta, float* gw, float* gb) {
    const int64_t count = p.norm.n * p.norm.c * p.norm.hw;
    Buffer ga = alloc(count);
    if (a.data() == nullptr && loader_fused(p.conv)) {
      Buffer scale, shift;
      fold_norm(p, mean, rstd, scale, shift);
      TcConvInput in;
      in.x = x, in.scale = scale.data(), in.shift = shift.data();
      tc_conv2d_backward_fused(in, p.w, gy, ga.data(), nullptr, gw, p.conv);
      conv2d_bias_backward(gy, gb, p.conv);
    } else {
      Buffer recomputed;
      const float* av = a.data();
      if (av == nullptr) {  // not kept: recompute it (same kernels, same statistics)
        recomputed = alloc(count);
        Buffer m = alloc(p.norm.n * p.norm.groups), r = alloc(p.norm.n * p.norm.groups);
        ks::cuda::groupnorm_silu_forward(x, p.gamma, p.beta, recomputed.data(), m.data(), r.data(), p.norm);
        av = recomputed.data();
      }
      ks::cuda::conv2d_backward(av, p.w, gy, ga.data(), gw, gb, p.conv);
    }
    ks::cuda::groupnorm_silu_backward(x, p.gamma, p.beta, mean, rstd, ga.data(), gx, ggamma, gbeta, p.norm);
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

 private:
  Graph net_;
};

}  // namespace

std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config) { return std::make_unique<CudaEngine>(config); }

}  // namespace ks::cuda
