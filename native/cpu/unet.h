// The UNet on the CPU reference ops: forward keeps a tape of what backward needs; backward adds the
// parameter gradients into a flat gradient array (so several forward/backward pairs accumulate into
// one step) and returns the gradient with respect to the input. Templated on the scalar: float for
// use, double for gradient checks.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "kintsugi/unet.h"

namespace ks::cpu {

template <class T>
class UNetCpu {
 public:

  // What one forward pass keeps for its backward pass.
  struct Tape {
    int64_t n = 0;
    std::vector<T> x;                          // the input
    std::vector<T> emb, l1, temb, st;          // time path: embedding, linear1, linear2 output, silu(temb)
    std::vector<T> h0;                         // conv_in output
    struct Stage {
      std::vector<T> in;                       // the stage's input (after the concat on the up path)
      std::vector<T> u1, a1, h, u2, a2;        // ResBlock: norm1, silu, conv1 + time, norm2, silu
      std::vector<T> mean1, rstd1, mean2, rstd2;
      std::vector<T> qkv, attn, o;             // Attention (u1/mean1/rstd1 hold its norm)
      std::vector<T> up;                       // Upsample: the upsampled input of its conv
      std::vector<T> pushed;                   // down path: the output, kept as a skip for the up path
    };
    std::vector<Stage> stages;
    std::vector<T> hout, uout, aout, mout, rout;  // output head: input, norm, silu, norm statistics
  };

  explicit UNetCpu(const UNetConfig& config);
  ~UNetCpu();
  const UNetPlan& plan() const { return plan_; }

  // x: [n, inChannels, r, r]; t: [n]; out: [n, outChannels, r, r].
  std::unique_ptr<Tape> forward(const T* params, const T* x, const T* t, int64_t n, T* out) const;
  // grads += dL/dparams for dL/dout = gout; gx (if not null) = dL/dx.
  void backward(const T* params, const Tape& tape, const T* gout, T* grads, T* gx) const;

 private:
  UNetPlan plan_;
};

extern template class UNetCpu<float>;
extern template class UNetCpu<double>;

}  // namespace ks::cpu
