// The emulator's scheduler (see emu.h and README.md). On x86-64 a fiber switch is a few instructions
// of assembly (ucontext's swapcontext makes a system call per switch, and ASan clears the whole stack's
// shadow on each one); elsewhere, or with -DEMU_UCONTEXT, it uses ucontext. Under ASan every switch is announced with
// the sanitizer's fiber API, so stack checks stay exact on the fibers' stacks.
#include "emu.h"

#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>
#include "kintsugi/allocator.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#if !defined(__x86_64__) || defined(EMU_UCONTEXT)
#define EMU_FAST_SWITCH 0
#else
#define EMU_FAST_SWITCH 1
#endif
#if !EMU_FAST_SWITCH
#include <ucontext.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
int emu_order = kEmuForward;
int emu_multiprocessors = 1;
int emu_compute_capability = 90;
long emu_collectives = 0;
long emu_async_copies = 0;
long emu_launches = 0;
long emu_barriers = 0;
long emu_shuffles = 0;

namespace {

constexpr size_t kStackBytes = 256 << 10;
enum State { kRun, kBarrier, kWarp, kDone };

struct Fiber {
  char* stack = nullptr;  // usable stack (a guard page lies below it)
  size_t size = 0;
  bool fresh = true;  // next resume starts the body from the top
  State state = kRun;
  const void* site = nullptr;  // call site of the barrier or shuffle it waits at
  // At kWarp: a shuffle (shfl) or __syncwarp, the lanes named in mask, and the value exchanged.
  bool shfl = false;
  EmuShfl kind = EmuShfl::Idx;
  unsigned mask = 0;
  int arg = 0, width = 32;
  uint64_t in = 0, out = 0;
  // At kWarp for a warp-collective instruction: its function and this lane's operands.
  EmuWarpFn coll = nullptr;
  void* io = nullptr;
  // cp.async: committed groups not yet landed (oldest first) and the copies of the open group.
  struct Copy {
    void* dst;
    const void* src;
    int bytes, src_bytes;
  };
  std::vector<std::vector<Copy>> groups;
  std::vector<Copy> open;
  std::string error;  // found inside the fiber; reported by the scheduler
  void* fake_stack = nullptr;
#if EMU_FAST_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
};

std::vector<std::unique_ptr<Fiber>> fibers;
Fiber* cur = nullptr;
const std::function<void()>* body_ptr = nullptr;
const char* kernel_name = "";
std::mt19937 rng(12345);
cudaError_t last_error = cudaSuccess;
std::map<std::string, long> launch_counts;

// The scheduler's side of the switch.
void* sched_fake_stack = nullptr;
const void* sched_bottom = nullptr;
size_t sched_size = 0;

inline void asan_start(void** fake, const void* bottom, size_t size) {
#if EMU_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
inline void asan_finish(void* fake, const void** bottom, size_t* size) {
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

[[noreturn]] void fiber_entry();

#if EMU_FAST_SWITCH
extern "C" void emu_switch(void** save_sp, void* load_sp);
// Saves the callee-saved registers on the current stack and its pointer in *save_sp, then restores
// the other context's registers from load_sp and returns into it.
asm(R"(
  .text
  .globl emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
void* sched_sp = nullptr;

void start_fresh(Fiber* f) {
  auto top = reinterpret_cast<uintptr_t>(f->stack + f->size) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                // fiber_entry's return address: it never returns
  *--sp = reinterpret_cast<void*>(&fiber_entry);  // emu_switch returns here
  for (int i = 0; i < 6; ++i) *--sp = nullptr;    // rbp, rbx, r12-r15
  f->sp = sp;
}
void to_fiber(Fiber* f) { emu_switch(&sched_sp, f->sp); }
void to_scheduler(Fiber* f) { emu_switch(&f->sp, sched_sp); }
#else
ucontext_t sched_ctx;
void start_fresh(Fiber* f) {
  getcontext(&f->ctx);
  f->ctx.uc_stack.ss_sp = f->stack;
  f->ctx.uc_stack.ss_size = f->size;
  f->ctx.uc_link = nullptr;
  makecontext(&f->ctx, fiber_entry, 0);
}
void to_fiber(Fiber* f) { swapcontext(&sched_ctx, &f->ctx); }
void to_scheduler(Fiber* f) { swapcontext(&f->ctx, &sched_ctx); }
#endif

Fiber* new_fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* base = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("emu: mmap of a fiber stack");
    abort();
  }
  mprotect(base, page, PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
  auto* f = new Fiber;
  f->stack = static_cast<char*>(base) + page;
  f->size = kStackBytes;
  return f;
}

// From inside a fiber: back to the scheduler until it resumes this fiber.
void park() {
  Fiber* f = cur;
  asan_start(&f->fake_stack, sched_bottom, sched_size);
  to_scheduler(f);
  asan_finish(f->fake_stack, &sched_bottom, &sched_size);
}

[[noreturn]] void fiber_entry() {
  asan_finish(nullptr, &sched_bottom, &sched_size);
  for (;;) {  // one block per round; the fiber is reused by the same thread index of the next block
    (*body_ptr)();
    cur->groups.clear();  // copies in flight at exit: a GPU lands them where nothing reads them
    cur->open.clear();
    cur->state = kDone;
    park();
  }
}

void resume(Fiber* f, int index) {
  threadIdx = {unsigned(index % blockDim.x), unsigned(index / blockDim.x % blockDim.y),
               unsigned(index / (blockDim.x * blockDim.y))};
  cur = f;
  if (f->fresh) {
    start_fresh(f);
    f->fresh = false;
  }
  asan_start(&sched_fake_stack, f->stack, f->size);
  to_fiber(f);
  asan_finish(sched_fake_stack, nullptr, nullptr);
  cur = nullptr;
}

// After an error the parked fibers are abandoned mid-kernel: restart them from the top next time.
void reset_fibers() {
  for (auto& f : fibers) {
#if EMU_ASAN
    __asan_unpoison_memory_region(f->stack, f->size);
#endif
    f->fresh = true;
    f->state = kRun;
    f->error.clear();
    f->groups.clear();
    f->open.clear();
  }
}

[[noreturn]] void fail(const std::string& what) {
  reset_fibers();
  char where[160];
  snprintf(where, sizeof where, "%s, block (%u,%u,%u) of grid (%u,%u,%u), block (%u,%u,%u): ", kernel_name, blockIdx.x,
           blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, blockDim.x, blockDim.y, blockDim.z);
  throw EmuError(std::string("emu: ") + where + what);
}

std::string hex(unsigned mask) {
  char b[16];
  snprintf(b, sizeof b, "0x%08x", mask);
  return b;
}

std::string thread_name(int i) {
  return "thread " + std::to_string(i) + " (warp " + std::to_string(i / 32) + " lane " + std::to_string(i % 32) + ")";
}

const char* state_name(State s) {
  switch (s) {
    case kRun:
      return "running";
    case kBarrier:
      return "at __syncthreads";
    case kWarp:
      return "at a warp shuffle or __syncwarp";
    default:
      return "exited";
  }
}

// Releases every warp-level group whose lanes have all arrived; checks masks and sources.
void release_warps(int nt) {
  for (int w0 = 0; w0 < nt; w0 += 32) {
    const int lanes = std::min(32, nt - w0);
    const unsigned present = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    for (int l = 0; l < lanes; ++l) {
      Fiber* f = fibers[w0 + l].get();
      if (f->state != kWarp) continue;
      const char* what = f->shfl ? "shuffle" : f->coll ? "warp-collective instruction (mma/ldmatrix)" : "__syncwarp";
      if (!(f->mask >> l & 1u))
        fail(thread_name(w0 + l) + " calls a " + what + " whose mask " + hex(f->mask) + " does not name it");
      if (f->mask & ~present)
        fail(thread_name(w0 + l) + ": the " + what + " mask names lanes that do not exist in this block");
      for (int j = 0; j < lanes; ++j) {
        if (!(f->mask >> j & 1u)) continue;
        const Fiber* g = fibers[w0 + j].get();
        if (g->state != kWarp)
          fail("lanes of warp " + std::to_string(w0 / 32) + " wait at a " + what + " whose mask names " +
               thread_name(w0 + j) + ", which is " + state_name(g->state) + " (on a GPU: deadlock or undefined)");
        if (g->mask != f->mask || g->shfl != f->shfl || g->coll != f->coll || g->site != f->site ||
            g->width != f->width || (f->shfl && g->kind != f->kind))
          fail(thread_name(w0 + l) + " and " + thread_name(w0 + j) + " are at different warp operations (" + "masks " +
               hex(f->mask) + ", " + hex(g->mask) + ")");
      }
    }
    // All groups complete: run each collective once (from its lowest lane), exchange values, release.
    for (int l = 0; l < lanes; ++l) {
      Fiber* f = fibers[w0 + l].get();
      if (f->state != kWarp || f->coll == nullptr || l != __builtin_ctz(f->mask)) continue;
      void* io[32] = {};
      for (int j = 0; j < lanes; ++j)
        if (f->mask >> j & 1u) io[j] = fibers[w0 + j]->io;
      try {
        f->coll(io, f->mask);
      } catch (const EmuError& e) {
        fail(e.what());
      }
      ++emu_collectives;
    }
    for (int l = 0; l < lanes; ++l) {
      Fiber* f = fibers[w0 + l].get();
      if (f->state != kWarp || !f->shfl) continue;
      const int width = f->width, base = l / width * width;
      int src = l;
      switch (f->kind) {
        case EmuShfl::Idx:
          src = base + ((f->arg % width) + width) % width;
          break;
        case EmuShfl::Up:
          src = l - base >= f->arg ? l - f->arg : l;
          break;
        case EmuShfl::Down:
          src = l - base + f->arg < width ? l + f->arg : l;
          break;
        case EmuShfl::Xor:
          src = (l ^ f->arg) < base + width ? (l ^ f->arg) : l;
          break;
      }
      if (src < 0 || src >= 32 || !(f->mask >> src & 1u))
        fail(thread_name(w0 + l) + " reads lane " + std::to_string(src) + " of a shuffle whose mask does not name it");
      f->out = fibers[w0 + src]->in;
    }
    bool any = false;
    for (int l = 0; l < lanes; ++l)
      if (fibers[w0 + l]->state == kWarp) {
        fibers[w0 + l]->state = kRun;
        any = true;
      }
    emu_shuffles += any;
  }
}

// Block order for this launch: forward, reverse or shuffled (catches some dependencies between blocks).
std::vector<uint64_t> block_order(uint64_t blocks) {
  std::vector<uint64_t> order(blocks);
  for (uint64_t i = 0; i < blocks; ++i) order[i] = i;
  if (emu_order == kEmuReverse) std::reverse(order.begin(), order.end());
  if (emu_order == kEmuShuffled) std::shuffle(order.begin(), order.end(), rng);
  return order;
}

std::string base_name(const char* name) {
  std::string s(name);
  s = s.substr(0, s.find('<'));
  const size_t colon = s.rfind("::");
  if (colon != std::string::npos) s = s.substr(colon + 2);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

void emu_run(const char* name, const EmuConfig& c, const std::function<void()>& body) {
  if (cur != nullptr) {
    fprintf(stderr, "emu: kernel %s launched from inside a kernel\n", name);
    abort();
  }
  ++emu_launches;
  ++launch_counts[base_name(name)];
  const dim3 g = c.grid, b = c.block;
  const uint64_t nt64 = uint64_t(b.x) * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535 || nt64 == 0 || nt64 > 1024 ||
      b.x > 1024 || b.y > 1024 || b.z > 64 || c.shared > 48 * 1024) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  const int nt = static_cast<int>(nt64);
  gridDim = g;
  blockDim = b;
  body_ptr = &body;
  kernel_name = name;
  while (static_cast<int>(fibers.size()) < nt) fibers.emplace_back(new_fiber());

  const uint64_t blocks = uint64_t(g.x) * g.y * g.z;
  std::vector<int> order(nt);
  for (uint64_t bi : block_order(blocks)) {
    blockIdx = {unsigned(bi % g.x), unsigned(bi / g.x % g.y), unsigned(bi / (uint64_t(g.x) * g.y))};
    for (int i = 0; i < nt; ++i) fibers[i]->state = kRun;
    for (;;) {
      for (int i = 0; i < nt; ++i) order[i] = i;
      if (emu_order == kEmuReverse) std::reverse(order.begin(), order.end());
      if (emu_order == kEmuShuffled) std::shuffle(order.begin(), order.end(), rng);
      for (int i : order)
        if (fibers[i]->state == kRun) resume(fibers[i].get(), i);
      int at_barrier = 0, at_warp = 0, done = 0;
      for (int i = 0; i < nt; ++i) {
        const Fiber* f = fibers[i].get();
        if (!f->error.empty()) fail(thread_name(i) + ": " + f->error);
        at_barrier += f->state == kBarrier;
        at_warp += f->state == kWarp;
        done += f->state == kDone;
      }
      if (at_warp) {  // warps first: their lanes may go on to the block barrier
        release_warps(nt);
        continue;
      }
      if (done == nt) break;
      if (done != 0)
        fail("barrier divergence: " + std::to_string(at_barrier) + " threads at __syncthreads, " +
             std::to_string(done) + " exited");
      const Fiber* first = fibers[0].get();
      for (int i = 1; i < nt; ++i)
        if (fibers[i]->site != first->site)
          fail("threads 0 and " + std::to_string(i) + " wait at different __syncthreads call sites");
      for (int i = 0; i < nt; ++i) fibers[i]->state = kRun;
      ++emu_barriers;
    }
  }
  body_ptr = nullptr;
}

long emu_launch_count(const std::string& kernel) {
  const auto it = launch_counts.find(kernel);
  return it == launch_counts.end() ? 0 : it->second;
}

__attribute__((noinline)) void __syncthreads() {
  if (cur == nullptr) {
    fprintf(stderr, "emu: __syncthreads outside a kernel\n");
    abort();
  }
  cur->site = __builtin_return_address(0);
  cur->state = kBarrier;
  park();
}

__attribute__((noinline)) void __syncwarp(unsigned mask) {
  if (cur == nullptr) return;
  cur->site = __builtin_return_address(0);
  cur->shfl = false;
  cur->mask = mask;
  cur->width = 32;
  cur->state = kWarp;
  park();
}

__attribute__((noinline)) void emu_warp_collective(unsigned mask, void* io, EmuWarpFn fn) {
  if (cur == nullptr) {
    fprintf(stderr, "emu: warp-collective instruction outside a kernel\n");
    abort();
  }
  cur->site = __builtin_return_address(0);
  cur->shfl = false;
  cur->coll = fn;
  cur->io = io;
  cur->mask = mask;
  cur->width = 32;
  cur->state = kWarp;
  park();
  cur->coll = nullptr;
  cur->io = nullptr;
}

namespace {
void land(const Fiber::Copy& c) {
  std::memcpy(c.dst, c.src, static_cast<size_t>(c.src_bytes));
  std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, static_cast<size_t>(c.bytes - c.src_bytes));
  ++emu_async_copies;
}
}  // namespace

void emu_cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (cur == nullptr) {
    fprintf(stderr, "emu: cp.async outside a kernel\n");
    abort();
  }
  if ((bytes != 4 && bytes != 8 && bytes != 16) || src_bytes < 0 || src_bytes > bytes) {
    cur->error = "cp.async of " + std::to_string(bytes) + " bytes with src-size " + std::to_string(src_bytes);
    return;
  }
  if (reinterpret_cast<uintptr_t>(dst) % bytes != 0 ||
      (src_bytes > 0 && reinterpret_cast<uintptr_t>(src) % bytes != 0)) {
    cur->error = "cp.async of " + std::to_string(bytes) + " bytes from or to an address not aligned to its size";
    return;
  }
  const Fiber::Copy c{dst, src, bytes, src_bytes};
  if (emu_order == kEmuReverse)
    land(c);  // lands at once: see emu.h
  else
    cur->open.push_back(c);
}

void emu_cp_async_commit() {
  if (cur == nullptr) return;
  cur->groups.push_back(std::move(cur->open));
  cur->open.clear();
}

void emu_cp_async_wait(int pending) {
  if (cur == nullptr) return;
  while (static_cast<int>(cur->groups.size()) > std::max(pending, 0)) {
    for (const auto& c : cur->groups.front()) land(c);
    cur->groups.erase(cur->groups.begin());
  }
}

__attribute__((noinline)) uint64_t emu_shfl(EmuShfl kind, unsigned mask, uint64_t bits, int arg, int width) {
  if (cur == nullptr) {
    fprintf(stderr, "emu: warp shuffle outside a kernel\n");
    abort();
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    cur->error = "shuffle width " + std::to_string(width) + " is not a power of two up to 32";
  cur->site = __builtin_return_address(0);
  cur->shfl = true;
  cur->kind = kind;
  cur->mask = mask;
  cur->arg = arg;
  cur->width = width;
  cur->in = bits;
  cur->state = kWarp;
  park();
  return cur->out;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return last_error; }
const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection:
      return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t err) {
  return err == cudaErrorInvalidConfiguration ? "invalid configuration argument (emulated launch check)"
                                              : cudaGetErrorName(err);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if (bytes) memcpy(dst, src, bytes);  // memcpy, not memmove: ASan reports overlapping ranges
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  if (bytes) memset(dst, value, bytes);
  return cudaSuccess;
}

struct EmuEvent {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
};
namespace {
long live_events = 0;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  if (event == nullptr) return cudaErrorInvalidValue;
  *event = new EmuEvent;
  ++live_events;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event == nullptr ? cudaErrorInvalidResourceHandle : cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return cudaErrorInvalidValue;
  if (start == nullptr || end == nullptr || !start->recorded || !end->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  delete event;
  --live_events;
  return cudaSuccess;
}
long emu_live_events() { return live_events; }

// ---- what device.cu and allocator.cu provide on a real build --------------------------------------

namespace ks::cuda {

namespace {
int the_stream;  // its address is the one stream

class EmuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t* granted) override {
    void* p = malloc(std::max<size_t>(bytes, 1));
    if (!p) throw OutOfMemory("emu: out of host memory");
    memset(p, 0xff, bytes);
    live_[p] = bytes;
    ++total_;
    *granted = bytes;
    return p;
  }
  void release(void* p, size_t granted) override {
    const auto it = live_.find(p);
    if (it == live_.end() || it->second != granted) {
      fprintf(stderr, "emu: release of %p (%zu bytes), which the allocator did not hand out as such\n", p, granted);
      abort();
    }
    live_.erase(it);
    free(p);
  }
  MemoryStats stats() override {
    MemoryStats s;
    for (const auto& [p, bytes] : live_) s.in_use += bytes;
    s.reserved = s.in_use;
    s.allocations = static_cast<uint64_t>(total_);
    return s;
  }
  void reset_peak() override {}
  void empty_cache() override {}
  long live() const { return static_cast<long>(live_.size()); }
  long total() const { return total_; }

 private:
  std::unordered_map<void*, size_t> live_;
  long total_ = 0;
};
EmuAllocator the_allocator;
}  // namespace

cudaStream_t stream() { return reinterpret_cast<cudaStream_t>(&the_stream); }
int multiprocessors() { return emu_multiprocessors; }
int compute_capability() { return emu_compute_capability; }
Allocator& allocator(int) { return the_allocator; }

}  // namespace ks::cuda

long emu_live_allocations() { return ks::cuda::the_allocator.live(); }
long emu_total_allocations() { return ks::cuda::the_allocator.total(); }
