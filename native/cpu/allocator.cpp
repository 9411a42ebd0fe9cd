// CPU memory: 64-byte aligned (a cache line; room for AVX-512 loads), counted for memoryStats().
// No cache: the C library's allocator already reuses freed blocks cheaply.
#include <algorithm>
#include <atomic>
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

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t* granted) override {
    const size_t size = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
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
