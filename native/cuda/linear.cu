// Linear: y[r, o] = b[o] + sum_i x[r, i] w[o, i], weight [out, in]. The time path only (n = batch,
// in, out <= 4C), a few MFLOP per step: one thread per output element with its sum in a fixed order,
// no tiling. Backward: gw, gb accumulate (+=), gx (when not null) is overwritten.
#include "common.cuh"
#include "nn.h"

namespace ks::cuda {
namespace {

// Launch: grid-stride, one thread per (r, o) = job / out, job % out; the sum over i starts from b[o]
// as in the reference.
__global__ void linear_forward_kernel(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t in,
                                      int64_t out) {
  for (int64_t job = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; job < n * out;
       job += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = job / out, o = job % out;
    const float* xr = x + r * in;
    const float* wo = w + o * in;
    float acc = b != nullptr ? b[o] : 0.0f;
    for (int64_t i = 0; i < in; ++i) acc = fmaf(xr[i], wo[i], acc);
    y[job] = acc;
  }
}

// Launch: grid-stride, one thread per weight (o, i) = job / in, job % in: gw[o, i] += sum over r of
// gy[r, o] x[r, i], r in increasing order. Threads of a warp read consecutive x.
__global__ void linear_weight_grad(const float* x, const float* gy, float* gw, int64_t n, int64_t in, int64_t out) {
  for (int64_t job = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; job < out * in;
       job += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = job / in, i = job % in;
    float acc = 0.0f;
    for (int64_t r = 0; r < n; ++r) acc = fmaf(gy[r * out + o], x[r * in + i], acc);
    gw[job] += acc;
  }
}

// Launch: grid-stride, one thread per output o: gb[o] += sum over r of gy[r, o].
__global__ void linear_bias_grad(const float* gy, float* gb, int64_t n, int64_t out) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < out; o += int64_t(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int64_t r = 0; r < n; ++r) acc += gy[r * out + o];
    gb[o] += acc;
  }
}

// Launch: grid-stride, one thread per (r, i) = job / in, job % in: gx[r, i] = sum over o of gy[r, o] w[o, i].
// Threads of a warp read consecutive w.
__global__ void linear_input_grad(const float* w, const float* gy, float* gx, int64_t n, int64_t in, int64_t out) {
  for (int64_t job = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; job < n * in;
       job += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = job / in, i = job % in;
    float acc = 0.0f;
    for (int64_t o = 0; o < out; ++o) acc = fmaf(gy[r * out + o], w[o * in + i], acc);
    gx[job] = acc;
  }
}

}  // namespace

void linear_forward(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t in, int64_t out) {
  if (n * out == 0) return;
  linear_forward_kernel<<<grid_for(n * out), 256, 0, stream()>>>(x, w, b, y, n, in, out);
  KS_CUDA_LAUNCHED(linear_forward);
}

void linear_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb, int64_t n,
                     int64_t in, int64_t out) {
  if (out * in != 0) {
    linear_weight_grad<<<grid_for(out * in), 256, 0, stream()>>>(x, gy, gw, n, in, out);
    KS_CUDA_LAUNCHED(linear_weight_grad);
  }
  if (gb != nullptr && out != 0) {
    linear_bias_grad<<<grid_for(out), 256, 0, stream()>>>(gy, gb, n, out);
    KS_CUDA_LAUNCHED(linear_bias_grad);
  }
  if (gx != nullptr && n * in != 0) {
    linear_input_grad<<<grid_for(n * in), 256, 0, stream()>>>(w, gy, gx, n, in, out);
    KS_CUDA_LAUNCHED(linear_input_grad);
  }
}

}  // namespace ks::cuda
