#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ks::cpu {
namespace {

constexpr int MR = 6, NR = 16;           // micro-tile: 6 rows x 16 columns = 12 AVX registers
constexpr int64_t KC = 256, MC = 96, NC = 2048;  // A block 96x256 (96 KiB) in L2, B panel 256x16 in L1

// Packs A[ic:ic+mc, pc:pc+kc] into MR-row panels, k-major within a panel, zero-padded.
void pack_a(const MatrixView& a, int64_t ic, int64_t pc, int64_t mc, int64_t kc, float* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, out += MR * kc) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - i0));
    // Row by row: each source row is read along its own stride (contiguous for plain row-major A).
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) {
        for (int64_t p = 0; p < kc; ++p) out[p * MR + r] = 0.0f;
        continue;
      }
      const float* src = a.data + (ic + i0 + r) * a.row_stride + pc * a.col_stride;
      for (int64_t p = 0; p < kc; ++p) out[p * MR + r] = src[p * a.col_stride];
    }
  }
}

// Packs B[pc:pc+kc, jc:jc+nc] into NR-column panels, k-major within a panel, zero-padded.
void pack_b(const MatrixView& b, int64_t pc, int64_t jc, int64_t kc, int64_t nc, float* out) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, out += NR * kc) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - j0));
    if (b.col_stride == 1) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b.data + (pc + p) * b.row_stride + jc + j0;
        std::memcpy(out + p * NR, src, static_cast<size_t>(cols) * sizeof(float));
        std::fill(out + p * NR + cols, out + (p + 1) * NR, 0.0f);
      }
    } else {
      // Transposed B: walk each source column contiguously along k.
      for (int c = 0; c < NR; ++c) {
        if (c >= cols) {
          for (int64_t p = 0; p < kc; ++p) out[p * NR + c] = 0.0f;
          continue;
        }
        const float* src = b.data + pc * b.row_stride + (jc + j0 + c) * b.col_stride;
        for (int64_t p = 0; p < kc; ++p) out[p * NR + c] = src[p * b.row_stride];
      }
    }
  }
}

// tile[MR][NR] = sum over kc of packed A panel x packed B panel.
void kernel_portable(int64_t kc, const float* a, const float* b, float* tile) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR)
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c) acc[r][c] += a[r] * b[c];
  std::memcpy(tile, acc, sizeof(acc));
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* a, const float* b, float* tile) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  _mm256_storeu_ps(tile + 0 * NR, c00); _mm256_storeu_ps(tile + 0 * NR + 8, c01);
  _mm256_storeu_ps(tile + 1 * NR, c10); _mm256_storeu_ps(tile + 1 * NR + 8, c11);
  _mm256_storeu_ps(tile + 2 * NR, c20); _mm256_storeu_ps(tile + 2 * NR + 8, c21);
  _mm256_storeu_ps(tile + 3 * NR, c30); _mm256_storeu_ps(tile + 3 * NR + 8, c31);
  _mm256_storeu_ps(tile + 4 * NR, c40); _mm256_storeu_ps(tile + 4 * NR + 8, c41);
  _mm256_storeu_ps(tile + 5 * NR, c50); _mm256_storeu_ps(tile + 5 * NR + 8, c51);
}
#endif

using Kernel = void (*)(int64_t, const float*, const float*, float*);

Kernel pick_kernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernel_avx2;
#endif
  return kernel_portable;
}

const Kernel kKernel = pick_kernel();

}  // namespace

const char* sgemm_kernel_name() { return kKernel == kernel_portable ? "portable" : "avx2-fma"; }

void sgemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
  thread_local std::vector<float> pa, pb;
  pa.resize(static_cast<size_t>(MC * KC));
  pb.resize(static_cast<size_t>(KC * ((NC + NR - 1) / NR) * NR));
  alignas(32) float tile[MR * NR];
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const bool add = accumulate || pc > 0;
      pack_b(b, pc, jc, kc, nc, pb.data());
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        pack_a(a, ic, pc, mc, kc, pa.data());
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
            kKernel(kc, pa.data() + ir * kc, pb.data() + jr * kc, tile);
            for (int r = 0; r < rows; ++r) {
              float* crow = c + (ic + ir + r) * ldc + jc + jr;
              const float* t = tile + r * NR;
              if (add)
                for (int q = 0; q < cols; ++q) crow[q] += t[q];
              else
                for (int q = 0; q < cols; ++q) crow[q] = t[q];
            }
          }
        }
      }
    }
  }
}

}  // namespace ks::cpu
