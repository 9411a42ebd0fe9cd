// Single-precision matrix product for the CPU reference's hot paths (convolutions as im2col + GEMM):
// C = A B (+ C when accumulating), with A and B given by row and column strides, so transposed
// operands need no copy. Packed panels and a register-blocked micro-kernel; AVX2+FMA is chosen at run
// time where the processor has it (the shipped binary targets baseline x86-64), else portable code.
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

// Which micro-kernel sgemm uses on this processor ("avx2-fma" or "portable").
const char* sgemm_kernel_name();

}  // namespace ks::cpu
