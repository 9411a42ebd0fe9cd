// Single-precision matrix product for the CPU's hot paths (convolutions, attention): C = A B (+ C when
// accumulating), with A and B given by row and column strides, so transposed operands need no copy.
// Packed panels and a register-blocked micro-kernel per instruction set (isa/kernels.inc), the variant
// picked at load time (isa.h).
#pragma once
#include <cstdint>

namespace ks::cpu {

struct MatrixView {
  const float* data;
  int64_t row_stride, col_stride;
  float at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// C[m, n] (row-major, leading dimension ldc) = (accumulate ? C : 0) + sum_k A[m, k] B[k, n].
// Single-threaded: callers parallelise over independent products.
void sgemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate);

// The same with B the im2col matrix of one sample x[cin, h, w] for a k x k convolution (k*k*cin rows,
// ho*wo columns), packed straight from the image: the matrix itself is never written.
void sgemm_im2col(int64_t m, MatrixView a, const float* x, int64_t cin, int64_t h, int64_t w, int64_t k, int64_t stride,
                  float* c, int64_t ldc, bool accumulate);

// The same with B read in place, row p (n floats) at b + off[p] for p < k: no packing of B.
void sgemm_rows(int64_t m, int64_t n, int64_t k, MatrixView a, const float* b, const int64_t* off, float* c,
                int64_t ldc, bool accumulate);

// Which kernel variant sgemm uses ("sse", "avx2" or "avx512").
const char* sgemm_kernel_name();

}  // namespace ks::cpu
