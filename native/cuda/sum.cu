// Full reductions (sum, sum of squares) in two passes with a fixed order (no atomics), so results are
// reproducible run to run: pass 1 gives one double partial per block, pass 2 adds the partials in one block.
// The number of partials is grid_for's, which grows with the SM count: on GPUs with different SM counts
// the grouping, and so the last bits, may differ.
#include "common.cuh"
#include "kintsugi/backend.h"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

template <bool kSquare>
__global__ void sum_partials(const float* a, int64_t n, double* partials) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const double x = a[i];
    s += kSquare ? x * x : x;
  }
  s = block_sum<kThreads>(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sum_final(const double* partials, int count, float* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) s += partials[i];
  s = block_sum<kThreads>(s);
  if (threadIdx.x == 0) *out = static_cast<float>(s);
}

template <bool kSquare>
void reduce(const float* a, int64_t n, float* out) {
  const unsigned blocks = grid_for(n, kThreads);
  Scratch<double> partials(blocks);  // after the first call, a free-list lookup in the caching allocator
  sum_partials<kSquare><<<blocks, kThreads, 0, stream()>>>(a, n, partials.get());
  KS_CUDA_LAUNCHED(sum_partials);
  sum_final<<<1, kThreads, 0, stream()>>>(partials.get(), static_cast<int>(blocks), out);
  KS_CUDA_LAUNCHED(sum);
}

}  // namespace

void sum(const float* a, int64_t n, float* out) { reduce<false>(a, n, out); }

void sum_squares(const float* a, int64_t n, float* out) { reduce<true>(a, n, out); }

}  // namespace ks::cuda
