// A host emulator for the CUDA kernels of native/cuda, for machines without a GPU (see README.md).
// Every CUDA thread of a block is a fiber with its own stack; __syncthreads and the warp shuffles park
// the fiber, and a scheduler releases a barrier only when every thread it concerns has reached it
// (reporting divergence, mismatched masks and barriers at different call sites). Blocks run one after
// another, so __shared__ is `static`. The threads of a block run from barrier to barrier in forward,
// reverse or shuffled order (emu_order): results that change with the order reveal a missing barrier.
// The launch rewriter (transform.mjs) turns `k<<<grid, block, smem, stream>>>(args)` into
// `emu_launch(emu_config(grid, block, smem, stream), "k", k, args)`.
#pragma once
#define KS_CUDA_EMULATOR 1  // cuda/mma.cuh takes its emulated branch
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- built-in variables and qualifiers ---------------------------------------------------------

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // blocks run one at a time
#define __constant__ static
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))

// ---- vector types and bit casts -----------------------------------------------------------------

struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

template <class To, class From>
inline To emu_bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
  To r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}
inline float __uint_as_float(unsigned v) { return emu_bit_cast<float>(v); }
inline unsigned __float_as_uint(float v) { return emu_bit_cast<unsigned>(v); }
inline float __int_as_float(int v) { return emu_bit_cast<float>(v); }
inline int __float_as_int(float v) { return emu_bit_cast<int>(v); }
inline double __longlong_as_double(long long v) { return emu_bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return emu_bit_cast<long long>(v); }

// ---- math: the C library's float functions (fminf, sqrtf, expf, fmaf, ...) come from <cmath>; the
// CUDA-only names map to the nearest host equivalent. The fast intrinsics are exact here, so the
// emulator cannot show their error.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

// ---- synchronisation ----------------------------------------------------------------------------

// Block barrier: parks the calling thread until every thread of the block is at the same barrier.
void __syncthreads();
// Warp barrier over the lanes named in mask (each caller must be in it).
void __syncwarp(unsigned mask = 0xffffffffu);
inline void __threadfence() {}
inline void __threadfence_block() {}

// Warp shuffles: every lane named in mask must reach the same shuffle; the values are exchanged when
// the last of them arrives (see emu_shfl). Reading a lane outside the mask is reported.
enum class EmuShfl { Idx, Up, Down, Xor };
uint64_t emu_shfl(EmuShfl kind, unsigned mask, uint64_t bits, int arg, int width);
template <class T>
inline T emu_shfl_t(EmuShfl kind, unsigned mask, T v, int arg, int width) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move 4 or 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  bits = emu_shfl(kind, mask, bits, arg, width);
  T r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) {
  return emu_shfl_t(EmuShfl::Idx, mask, v, src_lane, width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  return emu_shfl_t(EmuShfl::Up, mask, v, int(delta), width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  return emu_shfl_t(EmuShfl::Down, mask, v, int(delta), width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  return emu_shfl_t(EmuShfl::Xor, mask, v, lane_mask, width);
}

// Warp-collective instructions (mma.sync, ldmatrix; cuda/mma.cuh): every lane named in mask must reach
// the same call site; when the last arrives, fn runs once for the warp with each lane's io pointer
// (io[lane], null for lanes outside the mask). io points into the lane's own frame, which stays put
// while it is parked, so fn reads every lane's inputs and writes every lane's outputs at once.
using EmuWarpFn = void (*)(void* const* io, unsigned mask);
void emu_warp_collective(unsigned mask, void* io, EmuWarpFn fn);

// cp.async (cuda/mma.cuh): a copy of `bytes` from global to shared memory, of which the first src_bytes
// come from src and the rest are zeros. It lands at the thread's cp.async.wait_group that covers its
// group, except under the reverse thread order, where it lands at issue: a read of the destination
// before the wait, or a stage overwritten while other threads still read it, then shows as an order
// dependence. Copies still in flight when the thread exits are dropped (a GPU would land them unseen).
void emu_cp_async(void* dst, const void* src, int bytes, int src_bytes);
void emu_cp_async_commit();
void emu_cp_async_wait(int pending);  // lands every committed group but the newest `pending`

// Atomics: a fiber is never interrupted between two barriers and blocks run one at a time, so a
// plain read-modify-write is atomic here. (The kernels use none; the rules forbid them in reductions.)
template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicSub(T* p, T v) {
  const T old = *p;
  *p = old - v;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T cmp, T v) {
  const T old = *p;
  if (old == cmp) *p = v;
  return old;
}

// ---- the runtime API the kernels' host code calls -----------------------------------------------

typedef struct EmuStream* cudaStream_t;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidResourceHandle = 400,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
cudaError_t cudaGetLastError();  // returns and clears the last launch error, as CUDA does
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
// Queued work runs at once here (stream order is program order), so these are plain copies.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
// Events (the UNet's stage profiler, cuda/unet.cu): work runs at once here, so an event's time is the
// host clock when it is recorded, and synchronising on it has nothing to wait for. As on a device,
// reading the time between events fails unless both were recorded.
typedef struct EmuEvent* cudaEvent_t;
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);
long emu_live_events();  // created and not yet destroyed (a case must destroy all it made)

// ---- launches -----------------------------------------------------------------------------------

struct EmuConfig {
  dim3 grid, block;
  size_t shared;
};
inline EmuConfig emu_config(dim3 grid, dim3 block, size_t shared = 0, cudaStream_t = nullptr) {
  return {grid, block, shared};
}
// Runs body once per thread of every block. A bad configuration sets the launch error (read by
// KS_CUDA_LAUNCHED through cudaGetLastError) and runs nothing, as on a device.
void emu_run(const char* name, const EmuConfig& c, const std::function<void()>& body);
// The arguments are converted to the kernel's parameter types once, on the host, as a launch does.
template <class... P, class... A>
void emu_launch(const EmuConfig& c, const char* name, void (*kernel)(P...), A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  emu_run(name, c, [&] { std::apply(kernel, params); });
}

// ---- emulator controls and counters -------------------------------------------------------------

enum EmuOrder { kEmuForward = 0, kEmuReverse = 1, kEmuShuffled = 2 };
extern int emu_order;               // the thread order of every pass between barriers
extern int emu_multiprocessors;     // what ks::cuda::multiprocessors() reports (sets grid_for's cap)
extern int emu_compute_capability;  // what ks::cuda::compute_capability() reports (90 unless a case sets it)
extern long emu_collectives;        // warp-collective instructions (one per warp) completed so far
extern long emu_async_copies;       // cp.async copies landed so far
extern long emu_launches;           // kernels launched so far
extern long emu_barriers;           // block barriers released so far
extern long emu_shuffles;           // warp shuffles (one per warp) completed so far
// Launches per kernel name (the name as written before <<<, template arguments stripped).
long emu_launch_count(const std::string& kernel);

// Scratch from the emulated caching allocator: exact-size malloc blocks (so ASan sees every overrun),
// filled with 0xff bytes (NaN as float and double: a kernel that reads scratch before writing it shows).
long emu_live_allocations();
long emu_total_allocations();

// An error found by the scheduler (divergent barrier, bad shuffle mask, ...): thrown from the launch.
struct EmuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
