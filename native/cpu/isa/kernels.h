// The CPU's hot kernels, compiled once per instruction set (kernels_base.cpp, kernels_avx2.cpp,
// kernels_avx512.cpp, each with its own compiler flags) and picked at load time by ../isa.cpp from the
// processor's features. This header must stay free of inline functions: it is included by translation
// units compiled for different instruction sets, and an inline function the linker merged from an
// AVX-512 unit could run on a processor without AVX-512.
#pragma once
#include <cstdint>

namespace ks::cpu::isa {

// A matrix operand by row and column strides (transposes need no copy).
struct Operand {
  const float* data;
  int64_t row_stride, col_stride;
};

// The 3x3 (or 1x1) convolution's im2col matrix of one sample, read in place by the GEMM's packing:
// row (ci, kh, kw), column (oy, ox), value x[ci, oy*stride + kh - pad, ox*stride + kw - pad] or 0.
struct ConvInput {
  const float* x;
  int64_t cin, h, w, k, stride, ho, wo;
};

struct AdamWStep {
  float scale, beta1, beta2, step_size, bc2_sqrt, eps, decay;
};

struct Kernels {
  const char* name;  // "sse" (the portable baseline: SSE2 on x86-64, NEON on arm64), "avx2", "avx512"
  int mr, nr;        // the GEMM micro-tile
  // Scratch sizes (floats) the caller provides to sgemm: packed A block and packed B panel.
  int64_t a_scratch, b_scratch;
  // C[m, n] (leading dimension ldc) = (accumulate ? C : 0) + A[m, k] B[k, n]. Single-threaded.
  void (*sgemm)(int64_t m, int64_t n, int64_t k, Operand a, Operand b, float* c, int64_t ldc, bool accumulate,
                float* pa, float* pb);
  // The same with B the im2col matrix of `in` (k = cin*k*k rows, n = ho*wo columns), never stored.
  void (*sgemm_conv)(int64_t m, Operand a, const ConvInput& in, float* c, int64_t ldc, bool accumulate, float* pa,
                     float* pb);
  // The same with B read in place: row p (n floats) at b + off[p], for p < k.
  void (*sgemm_rows)(int64_t m, int64_t n, int64_t k, Operand a, const float* b, const int64_t* off, float* c,
                     int64_t ldc, bool accumulate, float* pa, float* pb);
  void (*silu_forward)(const float* x, float* y, int64_t n);
  void (*silu_backward)(const float* x, const float* gy, float* gx, int64_t n);  // gx may alias gy
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);
  void (*add)(float* a, const float* b, int64_t n);                       // a += b
  void (*add_scalar)(float* a, float b, int64_t n);                       // a += b
  void (*affine)(const float* x, float* y, int64_t n, float a, float b);  // y = a x + b
  // sum(x) and sum((x - mu)^2), accumulated in float lanes and combined in double.
  double (*sum)(const float* x, int64_t n);
  double (*sq_dev)(const float* x, int64_t n, float mu);
  // sum(g) and sum(g (x - shift)) in one pass.
  void (*sum_gx)(const float* g, const float* x, int64_t n, float shift, double* sg, double* sgx);
  // out = a g + b x + c
  void (*axpbyc)(const float* g, const float* x, float* out, int64_t n, float a, float b, float c);
  // GroupNorm + SiLU (groupnorm_silu.cpp): y = silu(a x + b), the apply pass of the forward.
  void (*affine_silu)(const float* x, float* y, int64_t n, float a, float b);
  // Its backward's first pass: u = a x + b, du = g silu'(u) written to out (out may alias g), and
  // sum(du), sum(du (x - shift)) accumulated as sum_gx does.
  void (*silu_grad_sums)(const float* g, const float* x, float* out, int64_t n, float a, float b, float shift,
                         double* sdu, double* sdux);
};

extern const Kernels kBase;
#if defined(__x86_64__)
extern const Kernels kAvx2;
extern const Kernels kAvx512;
#endif

}  // namespace ks::cpu::isa
