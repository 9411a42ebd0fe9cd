// Fixed-order reductions over a thread block (GroupNorm statistics, softmax rows, channel sums, full
// sums). The order is a function of the block size only, never of the data, the grid or the device, so
// results are bit-identical run to run. No atomics.
#pragma once
#include "common.cuh"

namespace ks::cuda {

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// A tree over the kThreads threads of the block: step s (kThreads / 2, ..., 2, 1) sets the value of
// thread t < s to op(value of t, value of t + s). The steps down to s = 32 go through shared memory, the
// last five through warp 0's shuffles, which pair the same threads, so the result is the same as a
// tree in shared memory all the way. Every thread passes its value and receives the total. Must be
// called by every thread of a block of exactly kThreads threads (it has barriers).
template <int kThreads, class T, class Op>
__device__ T block_reduce(T v, Op op) {
  static_assert(kThreads >= 64 && (kThreads & (kThreads - 1)) == 0, "a power of two of at least two warps");
  __shared__ T buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s >= 32; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] = op(buf[threadIdx.x], buf[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x < 32) {  // all of warp 0, as the full shuffle mask requires
    v = buf[threadIdx.x];
    for (int s = 16; s > 0; s >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, s));
    if (threadIdx.x == 0) buf[0] = v;  // the other lanes read only their own element, before their first shuffle
  }
  __syncthreads();
  const T total = buf[0];
  __syncthreads();  // buf is reused by the next call
  return total;
}

template <int kThreads, class T>
__device__ T block_sum(T v) {
  return block_reduce<kThreads>(v, SumOp{});
}

template <int kThreads>
__device__ float block_max(float v) {
  return block_reduce<kThreads>(v, MaxOp{});
}

}  // namespace ks::cuda
