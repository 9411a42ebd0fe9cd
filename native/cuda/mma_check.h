// The checks of the warp-level wrapper alone (mma_check.cu): one warp each, small fixed shapes.
#pragma once
#include <cstdint>

namespace ks::cuda {

// True when the calling worker's device has BF16/TF32 mma.sync and cp.async (compute capability >= 8.0);
// elsewhere the convolutions take the FP32 SIMT path whatever precision is asked for.
bool tensor_cores_available();

enum MmaCheckVariant {
  kMmaCheckBf16 = 0,           // d = bf16(a)[16x16] bf16(b)[16x8] + c, fragments from global memory
  kMmaCheckTf32 = 1,           // d = tf32(a)[16x8] tf32(b)[8x8] + c
  kMmaCheckLdmatrixTrans = 2,  // as kMmaCheckBf16, A by ldmatrix.x4, B ([k][n] in shared) by ldmatrix.x2.trans
  kMmaCheckLdmatrix = 3,       // as kMmaCheckBf16, A by ldmatrix.x4, B ([n][k] in shared) by ldmatrix.x2
};
// a, b, c, d row-major: a [16, K], b [K, 8], c and d [16, 8]; K = 8 for TF32, else 16.
void mma_check(int variant, const float* a, const float* b, const float* c, float* d);
// m: count (1, 2, 4) 8x8 matrices of 16-bit values, one per uint32 (low half); out[lane * count + i].
void ldmatrix_check(int count, bool trans, const uint32_t* m, uint32_t* out);
// dst [768]: src [256] through 4-, 8- and 16-byte cp.async (every fifth copy zero-filled).
void cp_async_check_run(const float* src, float* dst);

}  // namespace ks::cuda
