// The CPU side of the op mma_check (core/tc_ops.cpp): the product the tensor-core wrapper's check kernel
// computes (cuda/mma_check.cu), as a plain GEMM of the rounded operands in double, rounded once.
#include <cstdint>
#include "kintsugi/precision.h"

namespace ks::cpu {

void mma_check(int variant, const float* a, const float* b, const float* c, float* d) {
  const bool tf32 = variant == 1;
  const int K = tf32 ? 8 : 16;
  const Precision p = tf32 ? Precision::tf32 : Precision::bf16;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double s = c[m * 8 + n];
      for (int k = 0; k < K; ++k) s += double(round_operand(a[m * K + k], p)) * round_operand(b[k * 8 + n], p);
      d[m * 8 + n] = static_cast<float>(s);
    }
}

}  // namespace ks::cpu
