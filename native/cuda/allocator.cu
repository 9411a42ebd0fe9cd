// A caching allocator per CUDA device. Freed blocks go to a size-ordered free list and are handed out
// again in stream order: every tensor of a device is used only by that device's single stream, so a
// block released while kernels that read it are still queued is reused only by kernels queued after
// them. That rule is checked at every allocation on a worker thread (stream_rule.h): a second stream
// or a graph capture is an error, not silent sharing of memory in flight. cudaMalloc runs only when
// the cache has no fitting block; cudaFree only on empty_cache() or when cudaMalloc fails (then the
// cache is emptied and the allocation retried once), after an explicit device synchronisation.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include "common.cuh"
#include "kintsugi/backend.h"
#include "stream_rule.h"

namespace ks::cuda {
namespace {

StreamRule& stream_rule() {
  static auto* rule = new StreamRule();  // leaked on purpose, like the allocators
  return *rule;
}

constexpr size_t kSmallRound = 512;       // sizes under 1 MiB round to 512 bytes
constexpr size_t kLargeRound = 2u << 20;  // larger ones to 2 MiB
constexpr size_t kSmallLimit = 1u << 20;

size_t round_size(size_t bytes) {
  bytes = std::max<size_t>(bytes, 1);
  const size_t r = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes, size_t* granted) override {
    const size_t size = round_size(bytes);
    check_stream();
    std::lock_guard<std::mutex> lock(mu_);
    // Best fit, but never a block more than twice the request (plus one large unit): a small tensor
    // must not pin a huge block.
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= 2 * size + kLargeRound) {
      void* p = it->second;
      *granted = it->first;
      stats_.cached -= it->first;
      free_.erase(it);
      take(*granted);
      return p;
    }
    KS_CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cache_locked();
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw OutOfMemory("out of GPU memory on cuda:" + std::to_string(device_) + ": tried to allocate " + mib(size) +
                        "; " + mib(stats_.in_use) + " in use by kintsugi tensors, " + mib(free_bytes) + " free of " +
                        mib(total) + ". Dispose tensors you no longer need or use a smaller batch.");
    }
    KS_CUDA_CHECK(err);
    ++stats_.allocations;
    *granted = size;
    take(size);
    return p;
  }

  void release(void* p, size_t granted) override {
    // No CUDA call here: this may run in a finalizer at teardown, after the context is gone.
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(granted, p);
    stats_.in_use -= granted;
    stats_.cached += granted;
  }

  MemoryStats stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats s = stats_;
    s.reserved = s.in_use + s.cached;
    return s;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak = stats_.in_use;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cache_locked();
  }

 private:
  void take(size_t size) {
    stats_.in_use += size;
    stats_.peak = std::max(stats_.peak, stats_.in_use);
  }

  // The calling thread's stream must be the device's one stream, and not capturing a graph. Off the
  // worker threads (the JavaScript thread allocating a tensor's storage) there is no stream: the
  // memory is used by queued tasks, which run on the device's stream.
  void check_stream() {
    cudaStream_t s = thread_stream();
    if (s == nullptr) return;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    KS_CUDA_CHECK(cudaStreamIsCapturing(s, &capture));
    stream_rule().check(device_, s, capture != cudaStreamCaptureStatusNone);
  }

  // Cached blocks may still be read or written by kernels queued before their release (on the device's
  // worker stream), and this runs on the worker (emptyCache) or on whichever thread allocates when
  // cudaMalloc fails: the JavaScript thread, for a new tensor's storage. So wait for the whole device
  // first, explicitly, rather than rely on cudaFree's implicit synchronisation. Holding mu_ meanwhile
  // is safe: the device finishes its queued work without the host. A failed synchronisation (an
  // earlier kernel's fault, reported here) leaves the cache as it is and is thrown.
  void release_cache_locked() {
    if (free_.empty()) return;
    KS_CUDA_CHECK(cudaSetDevice(device_));
    KS_CUDA_CHECK(cudaDeviceSynchronize());
    cudaError_t first = cudaSuccess;
    for (auto& [size, p] : free_) {
      const cudaError_t err = cudaFree(p);
      if (first == cudaSuccess) first = err;
    }
    free_.clear();
    stats_.cached = 0;
    KS_CUDA_CHECK(first);
  }

  int device_;
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  MemoryStats stats_;
};

}  // namespace

void bind_stream(int device, cudaStream_t stream) { stream_rule().bind(device, stream); }

Allocator& allocator(int index) {
  static std::mutex mu;
  static auto* allocators = new std::vector<std::unique_ptr<CachingAllocator>>();  // leaked on purpose
  std::lock_guard<std::mutex> lock(mu);
  if (index < 0) throw std::invalid_argument("allocator: negative CUDA device index");
  while (static_cast<int>(allocators->size()) <= index)
    allocators->push_back(std::make_unique<CachingAllocator>(static_cast<int>(allocators->size())));
  return *(*allocators)[static_cast<size_t>(index)];
}

}  // namespace ks::cuda
