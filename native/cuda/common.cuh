// Shared by the CUDA kernels: error checks that turn CUDA errors into exceptions (the queue reports
// them to JavaScript), the worker thread's stream, launch sizes, and scratch memory.
#pragma once
#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include "kintsugi/backend.h"

namespace ks::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                           "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

#define KS_CUDA_CHECK(expr)                                                                 \
  do {                                                                                      \
    cudaError_t ks_err_ = (expr);                                                           \
    if (ks_err_ != cudaSuccess) ::ks::cuda::throw_cuda(ks_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a launch: catches bad configurations at once (errors inside the kernel surface at the next sync).
#define KS_CUDA_LAUNCHED(name) KS_CUDA_CHECK(cudaGetLastError())

cudaStream_t stream();                              // the calling worker thread's stream
cudaStream_t thread_stream();                       // the same, or null on a thread that issues no CUDA work
void bind_stream(int device, cudaStream_t stream);  // the device's one stream (allocator.cu, stream_rule.h)
int multiprocessors();                              // SMs of the calling worker thread's device
int compute_capability();  // of the calling worker thread's device, as major * 10 + minor (90: H100)

// Blocks for a grid-stride loop over `items` with `threads` per block: enough to fill the device a few
// times over, never more than the items need.
inline unsigned grid_for(int64_t items, int threads = 256) {
  const int64_t needed = (items + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(multiprocessors()) * 16;
  return static_cast<unsigned>(needed < 1 ? 1 : (needed < cap ? needed : cap));
}

// Scratch memory of `count` T from the current device's caching allocator, for the kernels queued while
// it lives. Released as soon as it goes out of scope, usually before those kernels have run: later work
// on this stream runs after them, so the block is reused only once they are done. The allocator checks
// that rule at every allocation on a worker thread (stream_rule.h): a second stream or a graph capture
// on the device is an error there.
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t count) {
    KS_CUDA_CHECK(cudaGetDevice(&device_));
    data_ = static_cast<T*>(allocator(device_).allocate(static_cast<size_t>(count) * sizeof(T), &granted_));
  }
  ~Scratch() { allocator(device_).release(data_, granted_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }

 private:
  int device_ = 0;
  size_t granted_ = 0;
  T* data_ = nullptr;
};

}  // namespace ks::cuda
