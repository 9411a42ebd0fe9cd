// The network ops (the UNet's building blocks), called by name: op(name, attrs, inputs, outputs) from
// JavaScript. Each is a registry row (core/registry.h) and a check that reads its integer attributes,
// checks every tensor's element count and returns the launch. Golden tests run each on the CPU (float,
// against the double reference) and on CUDA (against the CPU) through this one entry point.
#include <stdexcept>
#include "kintsugi/nn_backend.h"
#include "registry.h"

namespace ks {
namespace {

Conv2dShape conv_shape(const OpCall& c, const char* op) {
  const Conv2dShape s{attr(c, op, "n", 1),
                      attr(c, op, "cin", 1),
                      attr(c, op, "h", 1),
                      attr(c, op, "w", 1),
                      attr(c, op, "cout", 1),
                      static_cast<int>(attr(c, op, "k", 1, 3)),
                      static_cast<int>(attr(c, op, "stride", 1, 2))};
  if (s.k == 2) throw std::invalid_argument(std::string(op) + ": attribute k must be 1 or 3, got 2");
  // Optional: the operand precision, 0 fp32 (exact, the default), 1 bf16, 2 tf32 (kintsugi/precision.h).
  // The CPU rounds its operands as the tensor cores do; CUDA runs the tensor-core kernels (sm_80+).
  Conv2dShape r = s;
  if (c.attrs.count("precision")) r.precision = static_cast<Precision>(attr(c, op, "precision", 0, 2));
  return r;
}

KS_GENERIC_OP(kConvForward, "conv2d_forward", cpu::conv2d_forward_rounded, KS_CUDA_FN(conv2d_forward),
              conv2d_forward_call);
void conv2d_forward_call(const OpCall& call) {
  Check c("conv2d_forward");
  const Conv2dShape s = conv_shape(call, c.op());
  const auto t = call_tensors(c, call, {s.n * s.cin * s.h * s.w, s.cout * s.cin * s.k * s.k, s.cout},
                              {s.n * s.cout * s.ho() * s.wo()});
  dispatch(kConvForward, c, t.in[0], t.in[1], t.in[2], t.out[0], s);
}

// The forward with its epilogue (kintsugi/nn_shapes.h ConvEpilogue): inputs x, w, b, chan_bias [n, cout]
// and residual (y's shape), all present; the UNet's ResBlocks add their time bias and residual this way.
KS_GENERIC_OP(kConvForwardFused, "conv2d_forward_fused", cpu::conv2d_forward_rounded_fused,
              KS_CUDA_FN(conv2d_forward_fused), conv2d_forward_fused_call);
void conv2d_forward_fused_call(const OpCall& call) {
  Check c("conv2d_forward_fused");
  const Conv2dShape s = conv_shape(call, c.op());
  const int64_t ny = s.n * s.cout * s.ho() * s.wo();
  const auto t =
      call_tensors(c, call, {s.n * s.cin * s.h * s.w, s.cout * s.cin * s.k * s.k, s.cout, s.n * s.cout, ny}, {ny});
  c.distinct(call.out[0], "output 0 (y)", call.in[4], "input 4 (residual)");
  ConvEpilogue<float> e;
  e.chan_bias = t.in[3];
  e.residual = t.in[4];
  dispatch(kConvForwardFused, c, t.in[0], t.in[1], t.in[2], t.out[0], s, e);
}

KS_GENERIC_OP(kConvBackward, "conv2d_backward", cpu::conv2d_backward_rounded, KS_CUDA_FN(conv2d_backward),
              conv2d_backward_call);
void conv2d_backward_call(const OpCall& call) {
  Check c("conv2d_backward");
  const Conv2dShape s = conv_shape(call, c.op());
  const int64_t nx = s.n * s.cin * s.h * s.w, nw = s.cout * s.cin * s.k * s.k;
  // gx and gb may be null (not wanted); gw accumulates.
  const auto t = call_tensors(c, call, {nx, nw, s.n * s.cout * s.ho() * s.wo()}, {nx, nw, s.cout}, {true, false, true});
  dispatch(kConvBackward, c, t.in[0], t.in[1], t.in[2], t.out[0], t.out[1], t.out[2], s);
}

GroupNormShape norm_shape(const OpCall& c, const char* op) {
  const GroupNormShape s{attr(c, op, "n", 1), attr(c, op, "c", 1), attr(c, op, "hw", 1),
                         static_cast<int>(attr(c, op, "groups", 1, 1 << 20))};
  if (s.c % s.groups)
    throw std::invalid_argument(std::string(op) + ": groups must divide c, got c " + std::to_string(s.c) + ", groups " +
                                std::to_string(s.groups));
  return s;
}

KS_GENERIC_OP(kNormForward, "groupnorm_forward", cpu::groupnorm_forward<float>, KS_CUDA_FN(groupnorm_forward),
              groupnorm_forward_call);
void groupnorm_forward_call(const OpCall& call) {
  Check c("groupnorm_forward");
  const GroupNormShape s = norm_shape(call, c.op());
  const int64_t nx = s.n * s.c * s.hw, ng = s.n * s.groups;
  const auto t = call_tensors(c, call, {nx, s.c, s.c}, {nx, ng, ng});
  dispatch(kNormForward, c, t.in[0], t.in[1], t.in[2], t.out[0], t.out[1], t.out[2], s);
}

KS_GENERIC_OP(kNormBackward, "groupnorm_backward", cpu::groupnorm_backward<float>, KS_CUDA_FN(groupnorm_backward),
              groupnorm_backward_call);
void groupnorm_backward_call(const OpCall& call) {
  Check c("groupnorm_backward");
  const GroupNormShape s = norm_shape(call, c.op());
  const int64_t nx = s.n * s.c * s.hw, ng = s.n * s.groups;
  const auto t = call_tensors(c, call, {nx, s.c, ng, ng, nx}, {nx, s.c, s.c});
  dispatch(kNormBackward, c, t.in[0], t.in[1], t.in[2], t.in[3], t.in[4], t.out[0], t.out[1], t.out[2], s);
}

// GroupNorm then SiLU in one op (the UNet's ResBlocks and output head): y = silu(groupnorm(x)).
KS_GENERIC_OP(kNormSiluForward, "groupnorm_silu_forward", cpu::groupnorm_silu_forward<float>,
              KS_CUDA_FN(groupnorm_silu_forward), groupnorm_silu_forward_call);
void groupnorm_silu_forward_call(const OpCall& call) {
  Check c("groupnorm_silu_forward");
  const GroupNormShape s = norm_shape(call, c.op());
  const int64_t nx = s.n * s.c * s.hw, ng = s.n * s.groups;
  const auto t = call_tensors(c, call, {nx, s.c, s.c}, {nx, ng, ng});
  dispatch(kNormSiluForward, c, t.in[0], t.in[1], t.in[2], t.out[0], t.out[1], t.out[2], s);
}

// Inputs x, gamma, beta, mean, rstd, gy; outputs gx (overwritten), ggamma and gbeta (accumulated).
KS_GENERIC_OP(kNormSiluBackward, "groupnorm_silu_backward", cpu::groupnorm_silu_backward<float>,
              KS_CUDA_FN(groupnorm_silu_backward), groupnorm_silu_backward_call);
void groupnorm_silu_backward_call(const OpCall& call) {
  Check c("groupnorm_silu_backward");
  const GroupNormShape s = norm_shape(call, c.op());
  const int64_t nx = s.n * s.c * s.hw, ng = s.n * s.groups;
  const auto t = call_tensors(c, call, {nx, s.c, s.c, ng, ng, nx}, {nx, s.c, s.c});
  dispatch(kNormSiluBackward, c, t.in[0], t.in[1], t.in[2], t.in[3], t.in[4], t.in[5], t.out[0], t.out[1], t.out[2], s);
}

KS_GENERIC_OP(kSiluForward, "silu_forward", cpu::silu_forward<float>, KS_CUDA_FN(silu_forward), silu_forward_call);
void silu_forward_call(const OpCall& call) {
  Check c("silu_forward");
  const int64_t n = attr(call, c.op(), "n");
  const auto t = call_tensors(c, call, {n}, {n});
  dispatch(kSiluForward, c, t.in[0], t.out[0], n);
}

KS_GENERIC_OP(kSiluBackward, "silu_backward", cpu::silu_backward<float>, KS_CUDA_FN(silu_backward), silu_backward_call);
void silu_backward_call(const OpCall& call) {
  Check c("silu_backward");
  const int64_t n = attr(call, c.op(), "n");
  const auto t = call_tensors(c, call, {n, n}, {n});
  dispatch(kSiluBackward, c, t.in[0], t.in[1], t.out[0], n);
}

KS_GENERIC_OP(kLinearForward, "linear_forward", cpu::linear_forward<float>, KS_CUDA_FN(linear_forward),
              linear_forward_call);
void linear_forward_call(const OpCall& call) {
  Check c("linear_forward");
  const int64_t n = attr(call, c.op(), "n"), in = attr(call, c.op(), "in"), out = attr(call, c.op(), "out");
  const auto t = call_tensors(c, call, {n * in, out * in, out}, {n * out});
  dispatch(kLinearForward, c, t.in[0], t.in[1], t.in[2], t.out[0], n, in, out);
}

KS_GENERIC_OP(kLinearBackward, "linear_backward", cpu::linear_backward<float>, KS_CUDA_FN(linear_backward),
              linear_backward_call);
void linear_backward_call(const OpCall& call) {
  Check c("linear_backward");
  const int64_t n = attr(call, c.op(), "n"), in = attr(call, c.op(), "in"), out = attr(call, c.op(), "out");
  const auto t = call_tensors(c, call, {n * in, out * in, n * out}, {n * in, out * in, out}, {true, false, true});
  dispatch(kLinearBackward, c, t.in[0], t.in[1], t.in[2], t.out[0], t.out[1], t.out[2], n, in, out);
}

KS_GENERIC_OP(kTimeEmbedding, "time_embedding", cpu::time_embedding<float>, KS_CUDA_FN(time_embedding),
              time_embedding_call);
void time_embedding_call(const OpCall& call) {
  Check c("time_embedding");
  const int64_t n = attr(call, c.op(), "n"), ch = attr(call, c.op(), "c");
  const auto t = call_tensors(c, call, {n}, {n * ch});
  dispatch(kTimeEmbedding, c, t.in[0], t.out[0], n, ch);
}

KS_GENERIC_OP(kAttnForward, "attention_forward", cpu::attention_forward<float>, KS_CUDA_FN(attention_forward),
              attention_forward_call);
void attention_forward_call(const OpCall& call) {
  Check c("attention_forward");
  const int64_t n = attr(call, c.op(), "n"), ch = attr(call, c.op(), "c"), p = attr(call, c.op(), "p");
  const auto t = call_tensors(c, call, {n * 3 * ch * p}, {n * p * p, n * ch * p});
  dispatch(kAttnForward, c, t.in[0], t.out[0], t.out[1], n, ch, p);
}

KS_GENERIC_OP(kAttnBackward, "attention_backward", cpu::attention_backward<float>, KS_CUDA_FN(attention_backward),
              attention_backward_call);
void attention_backward_call(const OpCall& call) {
  Check c("attention_backward");
  const int64_t n = attr(call, c.op(), "n"), ch = attr(call, c.op(), "c"), p = attr(call, c.op(), "p");
  const auto t = call_tensors(c, call, {n * 3 * ch * p, n * p * p, n * ch * p}, {n * 3 * ch * p});
  dispatch(kAttnBackward, c, t.in[0], t.in[1], t.in[2], t.out[0], n, ch, p);
}

KS_GENERIC_OP(kUpForward, "upsample2_forward", cpu::upsample2_forward<float>, KS_CUDA_FN(upsample2_forward),
              upsample2_forward_call);
void upsample2_forward_call(const OpCall& call) {
  Check c("upsample2_forward");
  const int64_t planes = attr(call, c.op(), "planes"), h = attr(call, c.op(), "h"), w = attr(call, c.op(), "w");
  const auto t = call_tensors(c, call, {planes * h * w}, {planes * h * w * 4});
  dispatch(kUpForward, c, t.in[0], t.out[0], planes, h, w);
}

KS_GENERIC_OP(kUpBackward, "upsample2_backward", cpu::upsample2_backward<float>, KS_CUDA_FN(upsample2_backward),
              upsample2_backward_call);
void upsample2_backward_call(const OpCall& call) {
  Check c("upsample2_backward");
  const int64_t planes = attr(call, c.op(), "planes"), h = attr(call, c.op(), "h"), w = attr(call, c.op(), "w");
  const auto t = call_tensors(c, call, {planes * h * w * 4}, {planes * h * w});
  dispatch(kUpBackward, c, t.in[0], t.out[0], planes, h, w);
}

// out = silu(a) * b over n elements (the gate of a gated linear unit); out may alias a or b.
KS_GENERIC_OP(kSiluMul, "silu_mul", cpu::silu_mul, KS_CUDA_FN(silu_mul), silu_mul_call);
void silu_mul_call(const OpCall& call) {
  Check c("silu_mul");
  const int64_t n = attr(call, c.op(), "n");
  const auto t = call_tensors(c, call, {n, n}, {n});
  dispatch(kSiluMul, c, t.in[0], t.in[1], t.out[0], n);
}

}  // namespace
}  // namespace ks
