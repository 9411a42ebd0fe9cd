// Instantiates the UNet graph for the CPU backend (float and double), and the CPU's UNet engine.
#include "unet.h"

#include <chrono>
#include <stdexcept>
#include "kintsugi/unet_engine.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ks {
template class UNetGraph<cpu::CpuOps<float>>;
template class UNetGraph<cpu::CpuOps<double>>;
}  // namespace ks

namespace ks {
namespace cpu {
namespace {
class CpuEngine final : public UNetEngine {
 public:
  explicit CpuEngine(const UNetConfig& config) : net_(config) {}
  std::shared_ptr<void> forward(const float* P, const float* x, const float* t, int64_t n, float* out, bool keep,
                                const float* cond) override {
    return std::shared_ptr<UNetCpu<float>::Tape>(net_.forward(P, x, t, n, out, keep, cond));
  }
  void backward(const float* P, const void* tape, const float* gout, float* G, float* gx, float* gcond) override {
    if (!static_cast<const UNetCpu<float>::Tape*>(tape)->complete)
      throw std::runtime_error(
          "backward: this forward ran without a tape (inference); run forward with a tape to train");
    net_.backward(P, *static_cast<const UNetCpu<float>::Tape*>(tape), gout, G, gx, gcond);
  }
  int64_t tape_batch(const void* tape) const override { return static_cast<const UNetCpu<float>::Tape*>(tape)->n; }
  StageTimes profile(const float* P, const float* x, const float* t, int64_t n, float* out, const float* gout, float* G,
                     float* gx) override {
    HostStageTimer timer;
    {
      auto tape = net_.forward(P, x, t, n, out, true, nullptr, &timer);
      net_.backward(P, *tape, gout, G, gx, nullptr, &timer);
    }
    return timer.result(StageTimer::entries_for(net_.plan().stages.size()));
  }

 private:
  // The CPU ops are synchronous (their threads join before they return): a mark's host time is the time
  // the stage's work ended or began.
  class HostStageTimer final : public StageTimer {
    std::vector<std::chrono::steady_clock::time_point> at_;
    void stamp(size_t i) override {
      at_.resize(i + 1);
      at_[i] = std::chrono::steady_clock::now();
    }
    double elapsed_ms(size_t a, size_t b) override {
      return std::chrono::duration<double, std::milli>(at_[b] - at_[a]).count();
    }
  };
  UNetCpu<float> net_;
};
}  // namespace

// A step allocates and frees the same activation buffers every time. glibc's defaults return large
// freed blocks to the kernel (munmap, heap trimming), so every step faulted its pages in again: 60% of
// a tiny16 step's page faults and ~40% of its CPU time (perf stat, native/dev/NOTES.md). Keeping blocks
// up to 32 MiB in the heap lets the next step reuse them; resident memory stays at the step's peak.
// The activations are allocated on the device's queue thread, so they live in a per-thread arena made
// of heaps of at most 64 MiB; glibc unmaps such a heap as soon as it is empty, whatever the trim
// threshold, unless M_TOP_PAD asks it to keep that much: a step that needs more than one heap (GSURE
// keeps two tapes alive) otherwise faulted ~1,800 pages per tiny16 step in again, after a supervised
// run in the same process, and cost 2.6x instead of 2.1x a supervised step (docs/cpu.md). The pad only
// reserves address space: pages are resident once written, as before.
static void keep_freed_memory() {
#if defined(__GLIBC__)
  static const bool once = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 64 << 20);
    return true;
  }();
  (void)once;
#endif
}

std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config) {
  keep_freed_memory();
  return std::make_unique<CpuEngine>(config);
}
}  // namespace cpu

}  // namespace ks
