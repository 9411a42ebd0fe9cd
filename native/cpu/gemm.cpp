#include "gemm.h"

#include <vector>
#include "isa.h"

namespace ks::cpu {
namespace {

// This thread's packing buffers for the selected variant, 64-byte aligned (whole cache lines, and
// aligned vector loads for AVX-512).
struct Scratch {
  std::vector<float> storage;
  float* a = nullptr;
  float* b = nullptr;
};

Scratch& scratch(const isa::Kernels& k) {
  thread_local Scratch s;
  if (!s.a) {
    s.storage.resize(static_cast<size_t>(k.a_scratch + k.b_scratch + 32));
    float* base = s.storage.data();
    const uintptr_t misalign = reinterpret_cast<uintptr_t>(base) % 64;
    s.a = base + (misalign ? (64 - misalign) / sizeof(float) : 0);
    s.b = s.a + (k.a_scratch + 15) / 16 * 16;
  }
  return s;
}

}  // namespace

const char* sgemm_kernel_name() { return kernels().name; }

void sgemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate) {
  const isa::Kernels& K = kernels();
  Scratch& s = scratch(K);
  if (b.col_stride == 1 && k > 0) {  // rows of B are contiguous: read them in place
    thread_local std::vector<int64_t> off;
    off.resize(static_cast<size_t>(k));
    for (int64_t p = 0; p < k; ++p) off[static_cast<size_t>(p)] = p * b.row_stride;
    K.sgemm_rows(m, n, k, {a.data, a.row_stride, a.col_stride}, b.data, off.data(), c, ldc, accumulate, s.a, s.b);
    return;
  }
  K.sgemm(m, n, k, {a.data, a.row_stride, a.col_stride}, {b.data, b.row_stride, b.col_stride}, c, ldc, accumulate, s.a,
          s.b);
}

void sgemm_rows(int64_t m, int64_t n, int64_t k, MatrixView a, const float* b, const int64_t* off, float* c,
                int64_t ldc, bool accumulate) {
  const isa::Kernels& K = kernels();
  Scratch& s = scratch(K);
  K.sgemm_rows(m, n, k, {a.data, a.row_stride, a.col_stride}, b, off, c, ldc, accumulate, s.a, s.b);
}

void sgemm_im2col(int64_t m, MatrixView a, const float* x, int64_t cin, int64_t h, int64_t w, int64_t k, int64_t stride,
                  float* c, int64_t ldc, bool accumulate) {
  const isa::Kernels& K = kernels();
  Scratch& s = scratch(K);
  const int64_t pad = k / 2, ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  const isa::ConvInput in{x, cin, h, w, k, stride, ho, wo};
  K.sgemm_conv(m, {a.data, a.row_stride, a.col_stride}, in, c, ldc, accumulate, s.a, s.b);
}

}  // namespace ks::cpu
