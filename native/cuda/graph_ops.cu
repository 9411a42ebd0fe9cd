// Small graph helpers of the UNet executor: residual adds, the per-sample time bias, its gradient (sums
// over pixels) and the channel concatenation of the up path with its inverse.
#include "common.cuh"
#include "nn.h"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

// Launch: grid-stride, one thread per element. No __restrict__: in-place by design.
__global__ void add_inplace_kernel(float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    a[i] += b[i];
}

// Launch: grid-stride, one thread per element i of [n * c planes, hw]; plane i / hw = b * c + ch.
__global__ void add_channel_bias_kernel(float* x, const float* bias, int64_t count, int64_t hw) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += bias[i / hw];
}

// Launch: grid-stride over planes, one block of 256 threads per plane; thread t adds the elements
// t, t + 256, ... in double, then block_sum's fixed tree.
__global__ void __launch_bounds__(kThreads)
    channel_sums_kernel(const float* x, float* out, int64_t planes, int64_t hw) {
  for (int64_t plane = blockIdx.x; plane < planes; plane += gridDim.x) {
    const float* in = x + plane * hw;
    double s = 0.0;
    for (int64_t p = threadIdx.x; p < hw; p += kThreads) s += in[p];
    s = block_sum<kThreads>(s);
    if (threadIdx.x == 0) out[plane] = static_cast<float>(s);
  }
}

// Launch: grid-stride, one thread per element i of out [n, ca + cb, hw]: sample b = i / ((ca + cb) hw),
// offset r within the sample; the first ca * hw values of a sample come from a, the rest from bsrc.
__global__ void concat_kernel(const float* a, const float* bsrc, float* out, int64_t n, int64_t ca, int64_t cb,
                              int64_t hw) {
  const int64_t sa = ca * hw, sb = cb * hw, per = sa + sb;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * per; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per, r = i % per;
    out[i] = r < sa ? a[b * sa + r] : bsrc[b * sb + (r - sa)];
  }
}

// The inverse: one thread per element i of in [n, ca + cb, hw], written to a or bdst.
__global__ void split_kernel(const float* in, float* a, float* bdst, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
  const int64_t sa = ca * hw, sb = cb * hw, per = sa + sb;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * per; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per, r = i % per;
    if (r < sa)
      a[b * sa + r] = in[i];
    else
      bdst[b * sb + (r - sa)] = in[i];
  }
}

}  // namespace

void add_inplace(float* a, const float* b, int64_t n) {
  if (n == 0) return;
  add_inplace_kernel<<<grid_for(n), 256, 0, stream()>>>(a, b, n);
  KS_CUDA_LAUNCHED(add_inplace);
}

void add_channel_bias(float* x, const float* bias, int64_t n, int64_t c, int64_t hw) {
  const int64_t count = n * c * hw;
  if (count == 0) return;
  add_channel_bias_kernel<<<grid_for(count), 256, 0, stream()>>>(x, bias, count, hw);
  KS_CUDA_LAUNCHED(add_channel_bias);
}

void channel_sums(const float* x, float* out, int64_t n, int64_t c, int64_t hw) {
  const int64_t planes = n * c;
  if (planes == 0) return;
  channel_sums_kernel<<<static_cast<unsigned>(planes < 65535 ? planes : 65535), kThreads, 0, stream()>>>(x, out, planes,
                                                                                                         hw);
  KS_CUDA_LAUNCHED(channel_sums);
}

void concat_channels(const float* a, const float* b, float* out, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
  const int64_t count = n * (ca + cb) * hw;
  if (count == 0) return;
  concat_kernel<<<grid_for(count), 256, 0, stream()>>>(a, b, out, n, ca, cb, hw);
  KS_CUDA_LAUNCHED(concat_channels);
}

void split_channels(const float* in, float* a, float* b, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
  const int64_t count = n * (ca + cb) * hw;
  if (count == 0) return;
  split_kernel<<<grid_for(count), 256, 0, stream()>>>(in, a, b, n, ca, cb, hw);
  KS_CUDA_LAUNCHED(split_channels);
}

}  // namespace ks::cuda
