// The CUDA caching allocator's out-of-memory behaviour, on the host (run.sh builds allocator.cu against
// the stand-in runtime of include/cuda_runtime.h). What a user relies on when a GPU fills up:
// - a cudaMalloc failure first empties the cache (after synchronising the device) and retries once;
// - a real shortage throws OutOfMemory with a message naming the device, the request and the usage,
//   and leaves everything as it was: no block taken, the statistics unchanged, CUDA's sticky last error
//   cleared (else the next kernel launch check would report a stale failure), later allocations work;
// - a kernel fault reported by the synchronisation is thrown as that fault and the cache is kept.
// Each case uses its own device index, so it starts with a fresh allocator.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include "cuda_runtime.h"
#include "kintsugi/backend.h"

namespace fake_cuda {
State& state() {
  static State s;
  return s;
}
}  // namespace fake_cuda

namespace {
std::map<void*, size_t>& blocks() {
  static std::map<void*, size_t> b;
  return b;
}
}  // namespace

cudaError_t cudaMalloc(void** p, size_t bytes) {
  auto& s = fake_cuda::state();
  if (s.used + bytes > s.limit) {
    s.log.push_back("malloc " + std::to_string(bytes) + " fail");
    s.last_error = cudaErrorMemoryAllocation;
    *p = nullptr;
    return cudaErrorMemoryAllocation;
  }
  *p = std::malloc(bytes);
  blocks()[*p] = bytes;
  s.used += bytes;
  s.log.push_back("malloc " + std::to_string(bytes) + " ok");
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  auto& s = fake_cuda::state();
  const size_t bytes = blocks().at(p);
  blocks().erase(p);
  std::free(p);
  s.used -= bytes;
  s.log.push_back("free " + std::to_string(bytes));
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
cudaError_t cudaDeviceSynchronize() {
  fake_cuda::state().log.push_back("sync");
  return fake_cuda::state().sync_result;
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = fake_cuda::state().last_error;
  fake_cuda::state().last_error = cudaSuccess;
  return e;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  auto& s = fake_cuda::state();
  *total = s.limit;
  *free_bytes = s.limit - s.used;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* st) {
  return *st = cudaStreamCaptureStatusNone, cudaSuccess;
}
const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation"
         : e == cudaErrorLaunchFailure  ? "cudaErrorLaunchFailure"
                                        : "cudaSuccess";
}
const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }

// device.cu's: the test runs on a thread that issues no CUDA work (like the JavaScript thread).
namespace ks::cuda {
cudaStream_t thread_stream() { return nullptr; }
}  // namespace ks::cuda

namespace {
constexpr size_t MiB = size_t(1) << 20;
int passed = 0, failed = 0;

void check(bool ok, const std::string& name, const std::string& detail = "") {
  std::printf("%-78s %s%s\n", name.c_str(), ok ? "ok" : "FAIL", detail.empty() ? "" : ("  " + detail).c_str());
  (ok ? passed : failed)++;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::string joined_log() {
  std::string out;
  for (const auto& l : fake_cuda::state().log) out += (out.empty() ? "" : ", ") + l;
  return out;
}
void reset(size_t limit) {
  auto& s = fake_cuda::state();
  s.limit = limit;
  s.sync_result = cudaSuccess;
  s.last_error = cudaSuccess;
  s.log.clear();
}

void rounding_and_reuse() {
  reset(64 * MiB);
  ks::Allocator& a = ks::cuda::allocator(1);
  size_t g1 = 0, g2 = 0, g3 = 0;
  void* p = a.allocate(100, &g1);
  check(g1 == 512 && a.stats().in_use == 512 && a.stats().allocations == 1, "small sizes round to 512 B");
  a.release(p, g1);
  void* q = a.allocate(300, &g2);
  check(q == p && g2 == 512 && a.stats().allocations == 1 && a.stats().cached == 0, "a released block is reused");
  void* big = a.allocate(3 * MiB, &g3);
  check(g3 == 4 * MiB, "large sizes round to 2 MiB", std::to_string(g3));
  a.release(big, g3);
  size_t g4 = 0;
  void* small = a.allocate(1000, &g4);
  check(small != big && a.stats().allocations == 3, "a small request does not take a much larger cached block");
  a.release(small, g4);
  a.release(q, g2);
  a.empty_cache();
  check(fake_cuda::state().used == 0 && a.stats().cached == 0 && a.stats().in_use == 0, "empty_cache frees everything");
}

void retry_after_emptying_the_cache() {
  reset(8 * MiB);
  ks::Allocator& a = ks::cuda::allocator(2);
  size_t ga = 0, gb = 0, gc = 0;
  void* pa = a.allocate(4 * MiB, &ga);
  void* pb = a.allocate(2 * MiB, &gb);
  a.release(pa, ga);
  a.release(pb, gb);  // 6 MiB cached, none in use; the device has 2 MiB free
  fake_cuda::state().log.clear();
  void* pc = a.allocate(6 * MiB, &gc);
  const std::string log = joined_log();
  check(pc != nullptr && gc == 6 * MiB, "cudaMalloc failure: the cache is emptied and the allocation retried", log);
  check(contains(log, "fail, sync, free") && log.rfind("malloc 6291456 ok") > log.find("sync"),
        "the device is synchronised before any cached block is freed");
  check(cudaGetLastError() == cudaSuccess, "the failed cudaMalloc's sticky error is cleared");
  const auto s = a.stats();
  check(s.cached == 0 && s.in_use == 6 * MiB && s.allocations == 3, "statistics after the retry");
  a.release(pc, gc);
  a.empty_cache();
}

void real_shortage() {
  reset(8 * MiB);
  ks::Allocator& a = ks::cuda::allocator(3);
  size_t g1 = 0, g2 = 0, g3 = 0;
  void* held = a.allocate(6 * MiB, &g1);
  void* extra = a.allocate(1 * MiB, &g2);
  a.release(extra, g2);  // 1 MiB cached: emptying the cache will not be enough
  const auto before = a.stats();
  std::string what;
  bool typed = false;
  try {
    a.allocate(4 * MiB, &g3);
  } catch (const ks::OutOfMemory& e) {
    typed = true;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  }
  check(typed, "a real shortage throws OutOfMemory", what);
  check(contains(what, "out of GPU memory on cuda:3") && contains(what, "tried to allocate 4 MiB") &&
            contains(what, "6 MiB in use") && contains(what, "smaller batch"),
        "the message names the device, the request, the usage and a remedy");
  const auto after = a.stats();
  check(after.in_use == before.in_use && after.allocations == before.allocations && after.cached == 0,
        "nothing was taken; the cache was emptied trying");
  check(fake_cuda::state().used == 6 * MiB, "device memory holds only the live block");
  check(cudaGetLastError() == cudaSuccess, "no stale CUDA error is left for the next launch check");
  size_t g4 = 0;
  void* later = nullptr;
  try {
    later = a.allocate(1 * MiB, &g4);
  } catch (...) {}
  check(later != nullptr, "the allocator stays usable: a smaller allocation succeeds");
  if (later) a.release(later, g4);
  a.release(held, g1);
  size_t g5 = 0;
  void* retry = nullptr;
  try {
    retry = a.allocate(4 * MiB, &g5);
  } catch (...) {}
  check(retry != nullptr, "after the user frees tensors, the same request succeeds");
  if (retry) a.release(retry, g5);
  a.empty_cache();
  check(fake_cuda::state().used == 0, "all device memory returned");
}

void fault_during_release() {
  reset(4 * MiB);
  ks::Allocator& a = ks::cuda::allocator(4);
  size_t g1 = 0, g2 = 0, held = 0;
  void* q = a.allocate(600 * 1024, &held);  // a small block in use
  void* p = a.allocate(2 * MiB, &g1);
  a.release(p, g1);                                         // 2 MiB cached
  fake_cuda::state().sync_result = cudaErrorLaunchFailure;  // an earlier kernel faulted
  fake_cuda::state().log.clear();
  std::string what;
  bool oom = false;
  try {
    a.allocate(3 * MiB, &g2);
  } catch (const ks::OutOfMemory& e) {
    oom = true;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  }
  check(!oom && contains(what, "cudaErrorLaunchFailure"),
        "a kernel fault found while emptying the cache is thrown as such", what);
  check(a.stats().cached == 2 * MiB && !contains(joined_log(), "free"),
        "the cache is left as it was: nothing freed under a faulted device");
  fake_cuda::state().sync_result = cudaSuccess;
  a.release(q, held);
  a.empty_cache();
  check(fake_cuda::state().used == 0, "once the fault is cleared, empty_cache frees everything");
}
}  // namespace

int main() {
  rounding_and_reuse();
  retry_after_emptying_the_cache();
  real_shortage();
  fault_during_release();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
