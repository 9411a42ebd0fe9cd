// Device memory. CPU: aligned malloc with statistics. CUDA: a caching allocator, so a training step
// that frees and reallocates the same sizes never calls cudaMalloc after the first step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include "kintsugi/device.h"

namespace ks {

struct MemoryStats {
  uint64_t in_use = 0;       // bytes handed out to live tensors (rounded block sizes)
  uint64_t peak = 0;         // high-water mark of in_use since start or reset_peak
  uint64_t cached = 0;       // bytes held free in the cache for reuse (always 0 on the CPU)
  uint64_t reserved = 0;     // in_use + cached: what the device actually holds for us
  uint64_t allocations = 0;  // calls to the underlying malloc/cudaMalloc
};

// Thrown when a device cannot provide the memory even after the cache was emptied.
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory of at least `bytes`; `*granted` receives the block size actually reserved.
  virtual void* allocate(size_t bytes, size_t* granted) = 0;
  virtual void release(void* p, size_t granted) = 0;
  virtual MemoryStats stats() = 0;
  virtual void reset_peak() = 0;
  virtual void empty_cache() = 0;
};

Allocator& allocator_for(const Device& d);

}  // namespace ks
