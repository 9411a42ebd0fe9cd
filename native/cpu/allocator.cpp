// CPU memory: 64-byte aligned (a cache line; room for AVX-512 loads), counted for memoryStats().
// No cache: the C library's allocator already reuses freed blocks cheaply.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <fstream>
#include <unistd.h>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {
namespace {

// KINTSUGI_CPU_MEMORY_LIMIT caps the bytes live CPU tensors may hold ("512M", "2G", or plain bytes;
// read once, at the first allocation). Past it an allocation fails as a real out-of-memory would, which
// lets tests and cautious users force and recover from out-of-memory without exhausting the machine.
// Unset, the cap is the machine's physical memory: a request beyond it could only end in the OOM killer.
uint64_t limit_from_env() {
  const char* text = std::getenv("KINTSUGI_CPU_MEMORY_LIMIT");
  if (text && *text) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    double scale = 1;
    if (end && (*end == 'k' || *end == 'K'))
      scale = 1024.0, ++end;
    else if (end && (*end == 'm' || *end == 'M'))
      scale = 1024.0 * 1024, ++end;
    else if (end && (*end == 'g' || *end == 'G'))
      scale = 1024.0 * 1024 * 1024, ++end;
    if (end && *end == 0 && value > 0) return static_cast<uint64_t>(value * scale);
    // A malformed value is ignored rather than thrown here (this runs inside an allocation).
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : UINT64_MAX;
}

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t* granted) override {
    const size_t size = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (limit_ == 0) limit_ = limit_from_env();
      if (size > limit_ || stats_.in_use > limit_ - size)
        throw OutOfMemory("out of host memory: " + std::to_string(size) + " bytes requested on cpu with " +
                          std::to_string(stats_.in_use) + " in use, over the limit of " + std::to_string(limit_) +
                          (std::getenv("KINTSUGI_CPU_MEMORY_LIMIT") ? " (KINTSUGI_CPU_MEMORY_LIMIT)"
                                                                    : " (the machine's physical memory)"));
    }
    void* p = std::aligned_alloc(64, size);
    if (!p) throw OutOfMemory("out of host memory: could not allocate " + std::to_string(size) + " bytes on cpu");
    std::lock_guard<std::mutex> lock(mu_);
    stats_.in_use += size;
    stats_.reserved = stats_.in_use;
    stats_.peak = std::max(stats_.peak, stats_.in_use);
    ++stats_.allocations;
    *granted = size;
    return p;
  }
  void release(void* p, size_t granted) override {
    std::free(p);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.in_use -= granted;
    stats_.reserved = stats_.in_use;
  }
  MemoryStats stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak = stats_.in_use;
  }
  void empty_cache() override {}

 private:
  std::mutex mu_;
  MemoryStats stats_;
  uint64_t limit_ = 0;  // 0: not read yet
};

}  // namespace

Allocator& allocator() {
  static auto* a = new CpuAllocator();  // leaked: tensors may be finalized during process teardown
  return *a;
}

DeviceInfo device_info() {
  DeviceInfo info;
  info.device = {DeviceType::CPU, 0};
  info.name = "cpu";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      info.name = line.substr(line.find(':') + 2);
      break;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) info.total_memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  info.multiprocessors = num_threads();
  return info;
}

}  // namespace ks::cpu
