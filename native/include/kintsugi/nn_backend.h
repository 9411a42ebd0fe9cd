// The network ops of both backends, float32, under the same names: what native/core's registry rows
// point at. The CUDA functions (native/cuda, device memory, queued on the thread's stream) are declared
// here with their semantics (which outputs are overwritten, which gradients accumulate, which pointers
// may be null); the CPU ones are the header templates of native/cpu (float and double) with the same
// semantics, whose float instantiations native/cpu/nn_float.cpp compiles.
#pragma once
#include <cstddef>
#include <cstdint>
#include "kintsugi/nn_shapes.h"

namespace ks::cpu {
// Declarations of the templates defined in native/cpu/<op>.h (the same signatures, or the build fails).
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s);
template <class T>
void conv2d_backward(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s);
// The float convolutions with the shape's operand precision (native/cpu/round_operands.cpp): the operands
// rounded to BF16 or TF32 as the tensor cores round them, then the FP32 kernels; fp32 runs them as they are.
void conv2d_forward_rounded(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// The same with the epilogue (kintsugi/nn_shapes.h ConvEpilogue) added in the output pass.
void conv2d_forward_rounded_fused(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                                  const ConvEpilogue<float>& e);
void conv2d_backward_rounded(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                             const Conv2dShape& s);
template <class T>
void groupnorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, const GroupNormShape& s);
template <class T>
void groupnorm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* gy, T* gx, T* ggamma,
                        T* gbeta, const GroupNormShape& s);
// y = silu(groupnorm(x)) in one op, mean/rstd as groupnorm_forward; backward recomputes u from x and the
// statistics: gx overwritten (may alias gy), ggamma and gbeta accumulate.
template <class T>
void groupnorm_silu_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, const GroupNormShape& s);
template <class T>
void groupnorm_silu_backward(const T* x, const T* gamma, const T* beta, const T* mean, const T* rstd, const T* gy,
                             T* gx, T* ggamma, T* gbeta, const GroupNormShape& s);
template <class T>
void silu_forward(const T* x, T* y, int64_t n);
template <class T>
void silu_backward(const T* x, const T* gy, T* gx, int64_t n);
template <class T>
void linear_forward(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out);
template <class T>
void linear_backward(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t n, int64_t in, int64_t out);
template <class T>
void time_embedding(const T* t, T* emb, int64_t n, int64_t c);
template <class T>
void attention_forward(const T* qkv, T* a, T* o, int64_t n, int64_t c, int64_t p);
template <class T>
void attention_backward(const T* qkv, const T* a, const T* go, T* gqkv, int64_t n, int64_t c, int64_t p);
template <class T>
void upsample2_forward(const T* x, T* y, int64_t planes, int64_t h, int64_t w);
template <class T>
void upsample2_backward(const T* gy, T* gx, int64_t planes, int64_t h, int64_t w);
// The UNet's channel concatenation as a free function (the bootstrap denoiser's input).
void concat_channels_f32(const float* a, const float* b, float* out, int64_t n, int64_t ca, int64_t cb, int64_t hw);
// out = silu(a) * b elementwise (float only; out may alias a or b).
void silu_mul(const float* a, const float* b, float* out, int64_t n);
}  // namespace ks::cpu

#if KS_WITH_CUDA
// All pointers are device memory; every function only queues work on ks::cuda::stream() and never
// synchronises the host. Reductions run in a fixed order with no atomics, so results are bit-identical
// run to run on a device.
namespace ks::cuda {

// y overwritten; b may be null.
void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// The same plus the epilogue (ConvEpilogue, nn_shapes.h: per-(n, cout) bias and residual), added in the
// kernel's store on the FP32 path; after the tensor-core kernel, by the graph helpers below.
void conv2d_forward_fused(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                          const ConvEpilogue<float>& e);
// gw += dL/dw, gb += dL/db (gb may be null); gx = dL/dx overwritten, skipped when null.
void conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                     const Conv2dShape& s);
// Bytes of weight-gradient partials conv2d_backward keeps at once (32 MiB unless set, or
// KINTSUGI_CONV2D_SCRATCH_BYTES): sets it (0: the default) and returns the previous cap. For tests.
size_t conv2d_weight_scratch_cap(size_t bytes);

// mean, rstd: [n * groups], overwritten with y.
void groupnorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                       const GroupNormShape& s);
// gx overwritten; ggamma, gbeta accumulate.
void groupnorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                        float* gx, float* ggamma, float* gbeta, const GroupNormShape& s);

// y = silu(groupnorm(x)): statistics, then one apply pass; u is never stored. y null: the statistics
// only (the tensor-core conv applies the normalisation in its loader). Backward recomputes u:
// gx overwritten (may alias gy, not x); ggamma, gbeta accumulate.
void groupnorm_silu_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                            const GroupNormShape& s);
void groupnorm_silu_backward(const float* x, const float* gamma, const float* beta, const float* mean,
                             const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                             const GroupNormShape& s);

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
void attention_backward(const float* qkv, const float* a, const float* go, float* gqkv, int64_t n, int64_t c,
                        int64_t p);

// Nearest-neighbour x2 over [planes, h, w] (h, w: the small side).
void upsample2_forward(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void upsample2_backward(const float* gy, float* gx, int64_t planes, int64_t h, int64_t w);

// Graph helpers used by the UNet executor.
void add_inplace(float* a, const float* b, int64_t n);                                 // a += b
void add_channel_bias(float* x, const float* bias, int64_t n, int64_t c, int64_t hw);  // x[b, ch, :] += bias[b*c + ch]
void channel_sums(const float* x, float* out, int64_t n, int64_t c, int64_t hw);       // out[b*c + ch] = sum over hw
void concat_channels(const float* a, const float* b, float* out, int64_t n, int64_t ca, int64_t cb, int64_t hw);
void split_channels(const float* in, float* a, float* b, int64_t n, int64_t ca, int64_t cb, int64_t hw);

// out = silu(a) * b elementwise; out may alias a or b.
void silu_mul(const float* a, const float* b, float* out, int64_t n);
}  // namespace ks::cuda
#endif
