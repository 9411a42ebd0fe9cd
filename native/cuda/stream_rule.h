// The one-stream-per-device rule, as a check. The caching allocator (allocator.cu) takes a released
// block back at once, usually before the kernels queued with it have run, and hands it to the next
// allocation: that is safe only because every kernel of a device is queued on that device's one
// stream, so the next user of the block runs after them. A second stream on the same device, or a CUDA
// graph captured on the stream (replayed later, after the block went to other work), would silently
// share memory that is still in flight. StreamRule turns both into a clear error at the allocation.
// Plain C++ (no CUDA types), so the host emulator's tests exercise the same logic (native/dev/emu).
#pragma once
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace ks::cuda {

class StreamRule {
 public:
  // Records `stream` as `device`'s one stream (called when a device's worker thread creates it).
  // Binding the same stream again is harmless; a different one is the error this rule exists for.
  void bind(int device, const void* stream) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = streams_.emplace(device, stream);
    if (!inserted && it->second != stream)
      throw std::logic_error(where(device) + "a second CUDA stream was created for the device. " + kWhy);
  }

  // Checked when memory is handed out to a thread that issues work on `stream` (null for threads that
  // issue none, such as the JavaScript thread: their allocations are used by queued tasks, which run on
  // the device's stream); `capturing`: whether that stream is recording a CUDA graph.
  void check(int device, const void* stream, bool capturing) const {
    if (stream == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = streams_.find(device);
    if (it == streams_.end())
      throw std::logic_error(where(device) +
                             "memory was requested for work on a stream that is not the device's own "
                             "(no stream is bound to the device). " +
                             kWhy);
    if (it->second != stream)
      throw std::logic_error(where(device) + "memory was requested for work on a second CUDA stream. " + kWhy);
    if (capturing)
      throw std::logic_error(where(device) +
                             "memory was requested while the device's stream is capturing a CUDA "
                             "graph: the graph's replay would use blocks that the caching allocator has given to other "
                             "work in between. Graph capture is not supported by the caching allocator.");
  }

 private:
  static constexpr const char* kWhy =
      "The caching allocator reuses a released block before the kernels queued with it have run, which is safe "
      "only when all of a device's work runs on its one stream, in order (native/cuda/stream_rule.h).";
  static std::string where(int device) { return "cuda:" + std::to_string(device) + ": "; }

  mutable std::mutex mu_;
  std::map<int, const void*> streams_;
};

}  // namespace ks::cuda
