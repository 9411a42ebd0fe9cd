// The network ops on a CUDA device, float32: the same semantics as the CPU reference functions of the
// same name in native/cpu (which outputs are overwritten, which gradients accumulate). All pointers are
// device memory; every function only queues work on ks::cuda::stream() and never synchronises the host.
// Reductions run in a fixed order with no atomics, so results are bit-identical run to run on a device.
#pragma once
#include <cstddef>
#include <cstdint>
#include "kintsugi/nn_shapes.h"

namespace ks::cuda {

// y overwritten; b may be null.
void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// gw += dL/dw, gb += dL/db (gb may be null); gx = dL/dx overwritten, skipped when null.
void conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb, const Conv2dShape& s);
// Bytes of weight-gradient partials conv2d_backward keeps at once (32 MiB unless set, or
// KINTSUGI_CONV2D_SCRATCH_BYTES): sets it (0: the default) and returns the previous cap. For tests.
size_t conv2d_weight_scratch_cap(size_t bytes);

// mean, rstd: [n * groups], overwritten with y.
void groupnorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                       const GroupNormShape& s);
// gx overwritten; ggamma, gbeta accumulate.
void groupnorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                        float* gx, float* ggamma, float* gbeta, const GroupNormShape& s);

void silu_forward(const float* x, float* y, int64_t n);
void silu_backward(const float* x, const float* gy, float* gx, int64_t n);  // gx may alias gy

// y = x W^T + b (b may be null); backward: gw, gb (+=, gb may be null), gx overwritten (may be null).
void linear_forward(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t in, int64_t out);
void linear_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb, int64_t n,
                     int64_t in, int64_t out);

// emb [n, c] = concat(sin(t f), cos(t f)); phases in double (t reaches 999).
void time_embedding(const float* t, float* emb, int64_t n, int64_t c);

// qkv [n, 3c, p]; a [n, p, p] (softmax rows, kept for backward); o [n, c, p]; gqkv overwritten.
void attention_forward(const float* qkv, float* a, float* o, int64_t n, int64_t c, int64_t p);
void attention_backward(const float* qkv, const float* a, const float* go, float* gqkv, int64_t n, int64_t c, int64_t p);

// Nearest-neighbour x2 over [planes, h, w] (h, w: the small side).
void upsample2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void upsample2_backward(const float* gy, float* gx, int64_t planes, int64_t h, int64_t w);

// Graph helpers used by the UNet executor.
void add_inplace(float* a, const float* b, int64_t n);                                 // a += b
void add_channel_bias(float* x, const float* bias, int64_t n, int64_t c, int64_t hw);   // x[b, ch, :] += bias[b*c + ch]
void channel_sums(const float* x, float* out, int64_t n, int64_t c, int64_t hw);        // out[b*c + ch] = sum over hw
void concat_channels(const float* a, const float* b, float* out, int64_t n, int64_t ca, int64_t cb, int64_t hw);
void split_channels(const float* in, float* a, float* b, int64_t n, int64_t ca, int64_t cb, int64_t hw);

}  // namespace ks::cuda
