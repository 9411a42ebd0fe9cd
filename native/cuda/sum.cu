// Full reductions (sum, sum of squares) in two passes with a fixed order (no atomics), so results are
// reproducible run to run: pass 1 gives one double partial per block, pass 2 adds the partials in one block.
#include "common.cuh"
#include "kintsugi/allocator.h"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

__device__ double block_sum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;  // valid in thread 0
}

template <bool kSquare>
__global__ void sum_partials(const float* a, int64_t n, double* partials) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const double x = a[i];
    s += kSquare ? x * x : x;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sum_final(const double* partials, int count, float* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) s += partials[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *out = static_cast<float>(s);
}

template <bool kSquare>
void reduce(const float* a, int64_t n, float* out) {
  const unsigned blocks = grid_for(n, kThreads);
  int device = 0;
  KS_CUDA_CHECK(cudaGetDevice(&device));
  // Scratch from the caching allocator: after the first call this is a free-list lookup. Released at
  // once: later work on this stream runs after these kernels, so the block can be reused safely.
  Allocator& alloc = allocator(device);
  size_t granted = 0;
  auto* partials = static_cast<double*>(alloc.allocate(blocks * sizeof(double), &granted));
  sum_partials<kSquare><<<blocks, kThreads, 0, stream()>>>(a, n, partials);
  sum_final<<<1, kThreads, 0, stream()>>>(partials, static_cast<int>(blocks), out);
  alloc.release(partials, granted);
  KS_CUDA_LAUNCHED(sum);
}

}  // namespace

void sum(const float* a, int64_t n, float* out) { reduce<false>(a, n, out); }

void sum_squares(const float* a, int64_t n, float* out) { reduce<true>(a, n, out); }

}  // namespace ks::cuda
