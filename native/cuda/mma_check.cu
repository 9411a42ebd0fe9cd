// The warp-level wrapper (mma.cuh) alone, on one warp: each instruction against a plain GEMM or copy
// computed elsewhere (the emulator's test.cpp; on a GPU, the op mma_check against the CPU, run first by
// bench/first-light before any kernel that uses the wrapper). Operands come in as FP32 and are rounded
// by the kernel as the convolutions round them.
#include <stdexcept>
#include <string>
#include "common.cuh"
#include "mma.cuh"
#include "mma_check.h"

namespace ks::cuda {
namespace {

__device__ __forceinline__ uint16_t bf16_of(float x) {
  return static_cast<uint16_t>(mma::pack_bf16x2(x, 0.0f) & 0xffffu);
}

// D[16x8] = A[16xK] B[Kx8] + C, row-major, K = 16 (BF16) or 8 (TF32). Each lane reads its fragment
// elements straight from global memory in the documented layout (mma.cuh).
__global__ void mma_gemm_check(const float* a, const float* b, const float* c, float* d, int tf32) {
  const int l = threadIdx.x, g = l / 4, t = l % 4;
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  uint32_t fa[4], fb[2];
  if (tf32) {
    fa[0] = mma::to_tf32(a[g * 8 + t]), fa[1] = mma::to_tf32(a[(g + 8) * 8 + t]);
    fa[2] = mma::to_tf32(a[g * 8 + t + 4]), fa[3] = mma::to_tf32(a[(g + 8) * 8 + t + 4]);
    fb[0] = mma::to_tf32(b[t * 8 + g]), fb[1] = mma::to_tf32(b[(t + 4) * 8 + g]);
    mma::mma_tf32_1688(acc, fa, fb, acc);
  } else {
    const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
    for (int i = 0; i < 4; ++i) fa[i] = mma::pack_bf16x2(a[rows[i] * 16 + cols[i]], a[rows[i] * 16 + cols[i] + 1]);
    fb[0] = mma::pack_bf16x2(b[2 * t * 8 + g], b[(2 * t + 1) * 8 + g]);
    fb[1] = mma::pack_bf16x2(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
    mma::mma_bf16_16816(acc, fa, fb, acc);
  }
  d[g * 8 + 2 * t] = acc[0], d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2], d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// The same BF16 product with the fragments loaded by ldmatrix from BF16 tiles in shared memory: A
// row-major through x4, B row-major [k][n] through x2.trans (and, with b_cols, B stored as [n][k]
// through x2 without .trans); C from global.
__global__ void mma_ldmatrix_check(const float* a, const float* b, const float* c, float* d, int b_cols) {
  __shared__ __align__(16) uint16_t As[16][16];
  __shared__ __align__(16) uint16_t Bs[16][8];  // [k][n]
  __shared__ __align__(16) uint16_t Bt[8][16];  // [n][k]
  const int l = threadIdx.x, g = l / 4, t = l % 4;
  for (int i = l; i < 256; i += 32) As[i / 16][i % 16] = bf16_of(a[i]);
  for (int i = l; i < 128; i += 32) {
    Bs[i / 8][i % 8] = bf16_of(b[i]);
    Bt[i % 8][i / 8] = bf16_of(b[i]);
  }
  __syncthreads();
  uint32_t fa[4], fb[2];
  // x4: lanes 0-7 rows 0-7 cols 0-7 (a[0]), 8-15 rows 8-15 (a[1]), 16-23 rows 0-7 cols 8-15 (a[2]), 24-31 (a[3]).
  mma::ldmatrix<4>(fa, &As[(l % 8) + 8 * ((l / 8) % 2)][8 * (l / 16)]);
  if (b_cols)
    mma::ldmatrix<2>(fb, &Bt[l % 8][8 * ((l / 8) % 2)]);  // lanes 0-7: k 0-7, 8-15: k 8-15
  else
    mma::ldmatrix<2, true>(fb, &Bs[l % 16][0]);  // lanes 0-15 name rows k 0..15
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  mma::mma_bf16_16816(acc, fa, fb, acc);
  d[g * 8 + 2 * t] = acc[0], d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2], d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// Raw ldmatrix: m holds `count` 8x8 matrices of 16-bit values (as uint16 in the low half of each
// input word); out[lane * count + i] = register i of lane.
template <int N, bool Trans>
__global__ void ldmatrix_raw_check(const uint32_t* m, uint32_t* out) {
  __shared__ __align__(16) uint16_t Ms[4][8][8];
  const int l = threadIdx.x;
  for (int i = l; i < N * 64; i += 32) Ms[i / 64][i / 8 % 8][i % 8] = static_cast<uint16_t>(m[i]);
  __syncthreads();
  uint32_t r[N];
  mma::ldmatrix<N, Trans>(r, &Ms[(l / 8) % N][l % 8][0]);
  for (int i = 0; i < N; ++i) out[l * N + i] = r[i];
}

// cp.async through shared memory: 256 floats copied three times, as 4-byte (group 1), 8-byte and 16-byte
// copies (group 2); copy number i of each kind is zero-filled when i % 5 == 0. Reads the first copy
// after waiting with one group left in flight, the others after waiting for all.
__global__ void cp_async_check(const float* src, float* dst) {
  __shared__ __align__(16) float s[3][256];
  const int l = threadIdx.x;
  for (int i = l; i < 256; i += 32) mma::cp_async<4>(&s[0][i], src + i, i % 5 != 0);
  mma::cp_async_commit();
  for (int i = l; i < 128; i += 32) mma::cp_async<8>(&s[1][2 * i], src + 2 * i, i % 5 != 0);
  for (int i = l; i < 64; i += 32) mma::cp_async<16>(&s[2][4 * i], src + 4 * i, i % 5 != 0);
  mma::cp_async_commit();
  mma::cp_async_wait<1>();
  __syncthreads();
  for (int i = l; i < 256; i += 32) dst[i] = s[0][i];
  mma::cp_async_wait<0>();
  __syncthreads();
  for (int i = l; i < 512; i += 32) dst[256 + i] = s[1 + i / 256][i % 256];
}

}  // namespace

bool tensor_cores_available() { return compute_capability() >= 80; }

void mma_check(int variant, const float* a, const float* b, const float* c, float* d) {
  if (!tensor_cores_available())
    throw std::runtime_error("mma_check: this device (compute capability " + std::to_string(compute_capability()) +
                             ") has no BF16/TF32 mma.sync (needs 8.0)");
  switch (variant) {
    case kMmaCheckBf16:
      mma_gemm_check<<<1, 32, 0, stream()>>>(a, b, c, d, 0);
      break;
    case kMmaCheckTf32:
      mma_gemm_check<<<1, 32, 0, stream()>>>(a, b, c, d, 1);
      break;
    case kMmaCheckLdmatrixTrans:
      mma_ldmatrix_check<<<1, 32, 0, stream()>>>(a, b, c, d, 0);
      break;
    case kMmaCheckLdmatrix:
      mma_ldmatrix_check<<<1, 32, 0, stream()>>>(a, b, c, d, 1);
      break;
    default:
      throw std::invalid_argument("mma_check: variant must be 0..3, got " + std::to_string(variant));
  }
  KS_CUDA_LAUNCHED(mma_check);
}

void ldmatrix_check(int count, bool trans, const uint32_t* m, uint32_t* out) {
  switch (count * 2 + trans) {
    case 2:
      ldmatrix_raw_check<1, false><<<1, 32, 0, stream()>>>(m, out);
      break;
    case 3:
      ldmatrix_raw_check<1, true><<<1, 32, 0, stream()>>>(m, out);
      break;
    case 4:
      ldmatrix_raw_check<2, false><<<1, 32, 0, stream()>>>(m, out);
      break;
    case 5:
      ldmatrix_raw_check<2, true><<<1, 32, 0, stream()>>>(m, out);
      break;
    case 8:
      ldmatrix_raw_check<4, false><<<1, 32, 0, stream()>>>(m, out);
      break;
    case 9:
      ldmatrix_raw_check<4, true><<<1, 32, 0, stream()>>>(m, out);
      break;
    default:
      throw std::invalid_argument("ldmatrix_check: count must be 1, 2 or 4");
  }
  KS_CUDA_LAUNCHED(ldmatrix_check);
}

void cp_async_check_run(const float* src, float* dst) {
  cp_async_check<<<1, 32, 0, stream()>>>(src, dst);
  KS_CUDA_LAUNCHED(cp_async_check);
}

}  // namespace ks::cuda
