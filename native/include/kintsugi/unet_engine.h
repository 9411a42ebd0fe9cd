// A UNet bound to one backend, behind a type-erased interface for the N-API layer: forward returns
// an opaque tape that the matching backward consumes. Runs on the device's worker thread.
#pragma once
#include <cstdint>
#include <memory>
#include "kintsugi/device.h"
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
};

std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config, const Device& device);

}  // namespace ks
