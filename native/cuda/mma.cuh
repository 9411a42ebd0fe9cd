// Warp-level matrix instructions behind one small interface (issue #13): mma.sync (m16n8k16 BF16 and
// m16n8k8 TF32, FP32 accumulate), ldmatrix (x1/x2/x4, with and without .trans), cp.async (4, 8 and 16
// bytes with zero fill, commit_group / wait_group) and the operand conversions (cvt.rn.bf16x2.f32,
// cvt.rna.tf32.f32). Three branches:
//   - the host emulator (KS_CUDA_EMULATOR, native/dev/emu): C++ that follows the PTX ISA's fragment
//     tables (PTX ISA 8.x, "Matrix Fragments for mma.m16n8k16 with floating point type" for BF16,
//     "Matrix Fragments for mma.m16n8k8" (.tf32 figures) for TF32, and the ldmatrix section's
//     "Fragment layout ... for matrix load" figure), run as a warp-collective step by the scheduler;
//   - sm_80 and newer: inline PTX;
//   - older architectures (the 75-virtual PTX of CMakeLists): a trap. The host never launches a kernel
//     that uses these there: tensor_cores_available() is false and the convolutions take the FP32 path.
// Fragment layouts (lane = 4 * groupID + threadID_in_group, g = groupID, t = threadID_in_group):
//   BF16 m16n8k16  A (16x16, row): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)
//                  B (16x8, col):  b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8..2t+9, n g)
//                  each register two BF16, the lower column (or k) in the low half
//   TF32 m16n8k8   A (16x8):  a[0] = (g, t), a[1] = (g+8, t), a[2] = (g, t+4), a[3] = (g+8, t+4)
//                  B (8x8):   b[0] = (k t, n g), b[1] = (k t+4, n g)
//   C, D (16x8 FP32, both shapes): c[0] = (g, 2t), c[1] = (g, 2t+1), c[2] = (g+8, 2t), c[3] = (g+8, 2t+1)
//   ldmatrix m8n8 .b16: lanes 8i..8i+7 give the row addresses (16 bytes each, 16-byte aligned) of
//                  matrix i; register i of lane l holds row l/4, columns 2(l%4), 2(l%4)+1 of matrix i
//                  (.trans: rows 2(l%4), 2(l%4)+1 of column l/4).
#pragma once
#include <cstdint>
#include "kintsugi/precision.h"
#if !defined(KS_CUDA_EMULATOR)
#include <cuda_runtime.h>
#endif

namespace ks::cuda::mma {

#if defined(KS_CUDA_EMULATOR)
namespace emu_detail {
struct MmaIo {
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
  float* d;
};
inline float lo_bf16(uint32_t r) { return bf16_to_float(static_cast<uint16_t>(r & 0xffffu)); }
inline float hi_bf16(uint32_t r) { return bf16_to_float(static_cast<uint16_t>(r >> 16)); }
inline float as_float(uint32_t r) {
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}
// D = A B + C for the warp. The products of BF16 or TF32 operands are exact in FP32; they are added to
// C in k order in FP32 (the hardware's internal order and extra bits are not documented: the golden
// tolerances come from an error model that covers any order, native/dev/NOTES.md).
inline void finish(void* const* io, float (&A)[16][16], float (&B)[16][8], int kdim) {
  float C[16][8];
  for (int l = 0; l < 32; ++l) {
    const auto* p = static_cast<const MmaIo*>(io[l]);
    const int g = l / 4, t = l % 4;
    C[g][2 * t] = p->c[0], C[g][2 * t + 1] = p->c[1], C[g + 8][2 * t] = p->c[2], C[g + 8][2 * t + 1] = p->c[3];
  }
  for (int l = 0; l < 32; ++l) {
    auto* p = static_cast<const MmaIo*>(io[l]);
    const int g = l / 4, t = l % 4;
    const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
    for (int i = 0; i < 4; ++i) {
      float s = C[rows[i]][cols[i]];
      for (int k = 0; k < kdim; ++k) s += A[rows[i]][k] * B[k][cols[i]];
      p->d[i] = s;
    }
  }
}
inline void mma_bf16_all(void* const* io, unsigned mask) {
  if (mask != 0xffffffffu) throw EmuError("mma.sync needs all 32 lanes of the warp");
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const auto* p = static_cast<const MmaIo*>(io[l]);
    const int g = l / 4, t = l % 4;
    const int ar[4] = {g, g + 8, g, g + 8}, ac[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
    for (int i = 0; i < 4; ++i) A[ar[i]][ac[i]] = lo_bf16(p->a[i]), A[ar[i]][ac[i] + 1] = hi_bf16(p->a[i]);
    B[2 * t][g] = lo_bf16(p->b[0]), B[2 * t + 1][g] = hi_bf16(p->b[0]);
    B[2 * t + 8][g] = lo_bf16(p->b[1]), B[2 * t + 9][g] = hi_bf16(p->b[1]);
  }
  finish(io, A, B, 16);
}
inline void mma_tf32_all(void* const* io, unsigned mask) {
  if (mask != 0xffffffffu) throw EmuError("mma.sync needs all 32 lanes of the warp");
  float A[16][16] = {}, B[16][8] = {};
  for (int l = 0; l < 32; ++l) {
    const auto* p = static_cast<const MmaIo*>(io[l]);
    const int g = l / 4, t = l % 4;
    // The tensor core reads only the TF32 bits of each register (the low 13 are ignored).
    auto tf = [](uint32_t r) { return as_float(r & 0xffffe000u); };
    A[g][t] = tf(p->a[0]), A[g + 8][t] = tf(p->a[1]), A[g][t + 4] = tf(p->a[2]), A[g + 8][t + 4] = tf(p->a[3]);
    B[t][g] = tf(p->b[0]), B[t + 4][g] = tf(p->b[1]);
  }
  finish(io, A, B, 8);
}
struct LdIo {
  const uint16_t* row;
  uint32_t* r;
};
template <int N, bool Trans>
inline void ldmatrix_all(void* const* io, unsigned mask) {
  if (mask != 0xffffffffu) throw EmuError("ldmatrix needs all 32 lanes of the warp");
  for (int i = 0; i < N; ++i) {
    uint16_t M[8][8];
    for (int j = 0; j < 8; ++j) {
      const uint16_t* row = static_cast<const LdIo*>(io[8 * i + j])->row;
      if (reinterpret_cast<uintptr_t>(row) % 16 != 0) throw EmuError("ldmatrix: a row address is not 16-byte aligned");
      std::memcpy(M[j], row, 16);
    }
    for (int l = 0; l < 32; ++l) {
      const int a = l / 4, b = 2 * (l % 4);
      const uint16_t lo = Trans ? M[b][a] : M[a][b], hi = Trans ? M[b + 1][a] : M[a][b + 1];
      static_cast<const LdIo*>(io[l])->r[i] = uint32_t(lo) | uint32_t(hi) << 16;
    }
  }
}
}  // namespace emu_detail
#endif

#if !defined(KS_CUDA_EMULATOR) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define KS_MMA_PTX 1
#else
#define KS_MMA_PTX 0
#endif

// Two floats as a BF16 pair (round to nearest even): lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
#if defined(KS_CUDA_EMULATOR)
  return uint32_t(bf16_bits_rn(lo)) | uint32_t(bf16_bits_rn(hi)) << 16;
#elif KS_MMA_PTX
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));  // d.hi = first source
  return r;
#else
  __trap();
  return 0;
#endif
}

// A float rounded to TF32 (nearest, ties away from zero), as the register the TF32 mma reads.
__device__ __forceinline__ uint32_t to_tf32(float x) {
#if defined(KS_CUDA_EMULATOR)
  const float r = round_tf32(x);
  uint32_t u;
  std::memcpy(&u, &r, 4);
  return u;
#elif KS_MMA_PTX
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#else
  __trap();
  return 0;
#endif
}

// d = a b + c over one warp, m16n8k16, BF16 operands, FP32 accumulate (d may be c).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                               const float (&c)[4]) {
#if defined(KS_CUDA_EMULATOR)
  emu_detail::MmaIo io{a, b, c, d};
  emu_warp_collective(0xffffffffu, &io, emu_detail::mma_bf16_all);
#elif KS_MMA_PTX
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  (void)d, (void)a, (void)b, (void)c;
  __trap();
#endif
}

// d = a b + c over one warp, m16n8k8, TF32 operands (registers from to_tf32), FP32 accumulate.
__device__ __forceinline__ void mma_tf32_1688(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                              const float (&c)[4]) {
#if defined(KS_CUDA_EMULATOR)
  emu_detail::MmaIo io{a, b, c, d};
  emu_warp_collective(0xffffffffu, &io, emu_detail::mma_tf32_all);
#elif KS_MMA_PTX
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  (void)d, (void)a, (void)b, (void)c;
  __trap();
#endif
}

// ldmatrix .m8n8 .b16, N = 1, 2 or 4 matrices: row is this lane's row address in shared memory (used
// from lanes 0 .. 8N-1), r[i] this lane's part of matrix i.
template <int N, bool Trans = false>
__device__ __forceinline__ void ldmatrix(uint32_t (&r)[N], const void* row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(KS_CUDA_EMULATOR)
  emu_detail::LdIo io{static_cast<const uint16_t*>(row), r};
  emu_warp_collective(0xffffffffu, &io, emu_detail::ldmatrix_all<N, Trans>);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (N == 1) {
    if constexpr (Trans)
      asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
    else
      asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(s));
  } else if constexpr (N == 2) {
    if constexpr (Trans)
      asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
    else
      asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
  } else {
    if constexpr (Trans)
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                   : "r"(s));
    else
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                   : "r"(s));
  }
#else
  (void)r, (void)row;
  __trap();
#endif
}

// cp.async of Bytes (4, 8 or 16) from global src to shared dst; with valid false nothing is read (src
// must still be a valid address) and dst gets zeros: the padding of a gathered tile costs no branch.
template <int Bytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(KS_CUDA_EMULATOR)
  emu_cp_async(dst, src, Bytes, valid ? Bytes : 0);
#elif KS_MMA_PTX
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int n = valid ? Bytes : 0;
  if constexpr (Bytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(src), "n"(Bytes), "r"(n));
#else
  (void)dst, (void)src, (void)valid;
  __trap();
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(KS_CUDA_EMULATOR)
  emu_cp_async_commit();
#elif KS_MMA_PTX
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most Pending of this thread's committed groups are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(KS_CUDA_EMULATOR)
  emu_cp_async_wait(Pending);
#elif KS_MMA_PTX
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

}  // namespace ks::cuda::mma
