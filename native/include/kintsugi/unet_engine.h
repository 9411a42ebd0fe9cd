// A UNet bound to one backend, behind a type-erased interface for the N-API layer: forward returns
// an opaque tape that the matching backward consumes. Runs on the device's worker thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "kintsugi/device.h"
#include "kintsugi/stage_timer.h"
#include "kintsugi/tensor.h"
#include "kintsugi/unet.h"

namespace ks {

class UNetEngine {
 public:
  virtual ~UNetEngine() = default;
  // keep = false: inference, the returned tape only knows its batch and backward refuses it.
  // cond (optional, [n, 4 * channels]) is added to the time embedding; gcond receives its gradient.
  virtual std::shared_ptr<void> forward(const float* params, const float* x, const float* t, int64_t n, float* out,
                                        bool keep = true, const float* cond = nullptr) = 0;
  virtual void backward(const float* params, const void* tape, const float* gout, float* grads, float* gx,
                        float* gcond = nullptr) = 0;
  virtual int64_t tape_batch(const void* tape) const = 0;
  // One forward (with a tape) and its backward, as forward() then backward() compute them (the same
  // out, grads += and gx bits), with each stage timed (kintsugi/stage_timer.h): the CPU engine by the
  // host clock, the CUDA engine by events on its stream (synchronised before it returns).
  virtual StageTimes profile(const float* params, const float* x, const float* t, int64_t n, float* out,
                             const float* gout, float* grads, float* gx) = 0;
};

// The engine of `device`'s backend (native/core/unet_ops.cpp picks it).
std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config, const Device& device);

// A UNet bound to a device, and a tape its forward fills for backward tasks queued after it.
struct UNetHandle {
  std::shared_ptr<UNetEngine> engine;
  Device device;
  int64_t resolution = 0, in_c = 0, out_c = 0, params = 0;
  int64_t temb_c = 0;  // width of the time embedding (4 * channels), the width of cond
};
struct UNetTape {
  std::shared_ptr<void> tape;
  Device device;
};
// The checked, queued operations of the N-API UNet (native/core/unet_ops.cpp); errors name the argument.
UNetHandle unet_create(const UNetConfig& config, const Device& device);
void unet_init_params(const UNetConfig& config, uint64_t seed, const Tensor& out);
// keep = false: inference (the tape only knows its batch). cond (when not null) [n, temb_c] is added to
// the time embedding: a condition embedding made outside the graph (docs/transfer.md).
std::shared_ptr<UNetTape> unet_forward(const UNetHandle& net, const Tensor& params, const Tensor& x, const Tensor& t,
                                       const Tensor& out, bool keep, const Tensor* cond = nullptr);
// grads += dL/dparams, gx (when not null) = dL/dx, gcond (when not null) = dL/dcond.
void unet_backward(const UNetHandle& net, const Tensor& params, const std::shared_ptr<UNetTape>& tape,
                   const Tensor& gout, const Tensor& grads, const Tensor* gx, const Tensor* gcond = nullptr);
// Frees the tape's activations once the work queued so far on its device has run.
void unet_release_tape(const std::shared_ptr<UNetTape>& tape);

// What each entry of a stage profile is (kintsugi/stage_timer.h's order), named as the checkpoint names
// the modules ("time", "conv_in", "down.0", ..., "mid.1", ..., "up.3", "out"), which are also
// test/interop/unet_torch.py's module paths. section: "time", "conv_in", "down", "mid", "up", "out";
// kind: "time", "conv", "res", "attn", "down", "up", "head"; size: the input's height = width; cin, cout
// its channels (cin with a concatenated skip).
struct StageEntry {
  std::string name, section, kind;
  int size = 0, cin = 0, cout = 0;
};
std::vector<StageEntry> unet_stage_entries(const UNetPlan& plan);
// Queues one profiled forward + backward (UNetEngine::profile) with the checks of unet_forward and
// unet_backward; done(times, error) runs on the worker thread once it has finished (or failed).
void unet_profile_stages(const UNetHandle& net, const Tensor& params, const Tensor& x, const Tensor& t,
                         const Tensor& out, const Tensor& gout, const Tensor& grads, const Tensor* gx,
                         std::function<void(StageTimes&&, const std::string*)> done);

// Each backend's engine (native/cpu/unet.cpp, native/cuda/unet.cu).
namespace cpu {
std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config);
}  // namespace cpu
#if KS_WITH_CUDA
namespace cuda {
std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config);
}  // namespace cuda
#endif

}  // namespace ks
