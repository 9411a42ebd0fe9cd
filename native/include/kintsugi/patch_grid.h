// The geometry of the bootstrap views (docs/bootstrap.md) and the arithmetic both backends share:
// the overlap-add window and the per-pixel gather of the aggregation. Inline and __host__ __device__, so
// the CPU reference and the CUDA kernels add the same terms in the same order (the golden tests check
// both against an independent double-precision reference).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KS_GRID_HD __host__ __device__
#else
#define KS_GRID_HD
#endif

namespace ks {

// Window of the overlap-add, one factor per axis; every kind is positive on the whole patch, so the
// per-pixel normaliser (the sum over the patches covering it) is never zero.
enum class PatchWindow : int {
  uniform = 0,   // 1: a plain average of the covering patches
  triangle = 1,  // min(u + 1, P − u): a tent, favouring patch centres, linear cross-fades
  hann = 2,      // sin²(π (u + ½) / P): the half-sample-shifted Hann window, smooth cross-fades
};

// Images [n, c, h, w] cut into size×size patches at offsets 0, stride, 2·stride, ... on each axis.
// Patch j = row · cols() + col of sample b is row b · count() + j of the [n · J, c, size, size] batch.
struct PatchGrid {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t size = 0, stride = 0;
  int window = 0;  // a PatchWindow

  KS_GRID_HD int64_t rows() const { return (h - size) / stride + 1; }
  KS_GRID_HD int64_t cols() const { return (w - size) / stride + 1; }
  KS_GRID_HD int64_t count() const { return rows() * cols(); }
};

KS_GRID_HD inline float patch_window(int window, int64_t u, int64_t size) {
  if (window == static_cast<int>(PatchWindow::triangle)) return static_cast<float>(u + 1 < size - u ? u + 1 : size - u);
  if (window == static_cast<int>(PatchWindow::hann)) {
    const double s = sin(3.141592653589793 * (static_cast<double>(u) + 0.5) / static_cast<double>(size));
    return static_cast<float>(s * s);
  }
  return 1.0f;
}

// The position channels of a patch pixel: its row (or column) in the whole image mapped onto [-1, 1].
KS_GRID_HD inline float patch_position(int64_t y, int64_t extent) {
  return extent > 1 ? static_cast<float>(2.0 * static_cast<double>(y) / static_cast<double>(extent - 1) - 1.0) : 0.0f;
}

// (Σ_j P_jᵀ (W_j ⊙ patches_j)) at pixel (y, x) of channel ch of sample b: the patches covering the
// pixel, weighted by the separable window normalised by its sum over them (the grid is a product of
// two 1-D grids, so the normaliser is the product of the two 1-D sums and the weights sum to one).
KS_GRID_HD inline float overlap_value(const float* patches, const PatchGrid& g, int64_t b, int64_t ch, int64_t y,
                                      int64_t x) {
  const int64_t P = g.size, S = g.stride, cols = g.cols();
  const int64_t y0 = y - P + 1 <= 0 ? 0 : (y - P + S) / S, y1 = y / S < g.rows() - 1 ? y / S : g.rows() - 1;
  const int64_t x0 = x - P + 1 <= 0 ? 0 : (x - P + S) / S, x1 = x / S < cols - 1 ? x / S : cols - 1;
  float sy = 0, sx = 0;
  for (int64_t i = y0; i <= y1; ++i) sy += patch_window(g.window, y - i * S, P);
  for (int64_t k = x0; k <= x1; ++k) sx += patch_window(g.window, x - k * S, P);
  float acc = 0;
  for (int64_t i = y0; i <= y1; ++i) {
    const float wy = patch_window(g.window, y - i * S, P);
    for (int64_t k = x0; k <= x1; ++k) {
      const int64_t j = b * g.count() + i * cols + k;
      acc += wy * patch_window(g.window, x - k * S, P) * patches[((j * g.c + ch) * P + (y - i * S)) * P + (x - k * S)];
    }
  }
  return acc / (sy * sx);
}

// One r×r cell (cy, cx) of plane p (= b · c + ch) of the aggregate, written into out [n, c, h, w]:
//   out = U f_lr + H g + f0,  g = Σ_j P_jᵀ (W_j ⊙ f_patch_j),  H = I − U A (A: r×r mean),
// with either view absent (f_lr null: out = g + f0; f_patch null: out = U f_lr + f0) and f0 optional.
// g is written into out first and corrected in a second pass, so no scratch is needed; the cell mean
// of the result is f_lr up to float rounding.
KS_GRID_HD inline void aggregate_cell(const float* f_lr, int r, const float* f_patch, const float* f0, float* out,
                                      const PatchGrid& g, int64_t p, int64_t cy, int64_t cx) {
  const int64_t b = p / g.c, ch = p % g.c, lw = g.w / r;
  const float low = f_lr ? f_lr[(p * (g.h / r) + cy) * lw + cx] : 0.0f;
  float mean = 0;
  if (f_patch) {
    float sum = 0;
    for (int dy = 0; dy < r; ++dy)
      for (int dx = 0; dx < r; ++dx) {
        const int64_t y = cy * r + dy, x = cx * r + dx;
        const float v = overlap_value(f_patch, g, b, ch, y, x);
        out[(p * g.h + y) * g.w + x] = v;
        sum += v;
      }
    if (f_lr) mean = sum / static_cast<float>(r * r);
  }
  for (int dy = 0; dy < r; ++dy)
    for (int dx = 0; dx < r; ++dx) {
      const int64_t i = (p * g.h + cy * r + dy) * g.w + cx * r + dx;
      float v = f_patch ? out[i] - mean + low : low;
      if (f0) v += f0[i];
      out[i] = v;
    }
}

}  // namespace ks
