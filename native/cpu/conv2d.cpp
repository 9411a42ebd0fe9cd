// The float path of conv2d: GEMMs, parallel over samples. Forward packs the im2col matrix straight
// from the image (gemm.h); backward still writes it (its products read it transposed). The double
// path (gradient checks, PyTorch fixtures) stays the direct loops of conv2d.h; the float-vs-double
// UNet test checks this one.
#include <algorithm>
#include <vector>
#include "conv2d.h"
#include "gemm.h"
#include "isa.h"

namespace ks::cpu {
namespace {

// Rows [r0, r1) of the im2col matrix: col[(ci, kh, kw) - r0, (oy, ox)] =
// x[ci, oy*stride + kh - pad, ox*stride + kw - pad], zero outside the image.
void im2col_rows(const float* x, float* col, int64_t r0, int64_t r1, const Conv2dShape& s) {
  const int64_t ho = s.ho(), wo = s.wo(), pad = s.k / 2, kk = int64_t(s.k) * s.k;
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t ci = row / kk, kh = (row % kk) / s.k;
    const int kw = static_cast<int>(row % s.k);
    float* out = col + (row - r0) * ho * wo;
    const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
    for (int64_t oy = 0; oy < ho; ++oy) {
      float* r = out + oy * wo;
      const int64_t iy = oy * s.stride + kh - pad;
      if (iy < 0 || iy >= s.h) {
        std::fill(r, r + wo, 0.0f);
        continue;
      }
      const float* in = x + (ci * s.h + iy) * s.w;
      std::fill(r, r + x0, 0.0f);
      if (s.stride == 1)
        std::copy(in + x0 + kw - pad, in + x1 + kw - pad, r + x0);
      else
        for (int64_t ox = x0; ox < x1; ++ox) r[ox] = in[ox * s.stride + kw - pad];
      std::fill(r + x1, r + wo, 0.0f);
    }
  }
}

// The adjoint of im2col: gx += scatter of gcol (gx is zeroed first by the caller).
void col2im(const float* col, float* gx, const Conv2dShape& s) {
  const int64_t ho = s.ho(), wo = s.wo(), pad = s.k / 2;
  for (int64_t ci = 0; ci < s.cin; ++ci)
    for (int kh = 0; kh < s.k; ++kh)
      for (int kw = 0; kw < s.k; ++kw) {
        const float* in = col + ((ci * s.k + kh) * s.k + kw) * ho * wo;
        const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
        for (int64_t oy = 0; oy < ho; ++oy) {
          const int64_t iy = oy * s.stride + kh - pad;
          if (iy < 0 || iy >= s.h) continue;
          float* out = gx + (ci * s.h + iy) * s.w;
          const float* row = in + oy * wo;
          for (int64_t ox = x0; ox < x1; ++ox) out[ox * s.stride + kw - pad] += row[ox];
        }
      }
}

bool is_pointwise(const Conv2dShape& s) { return s.k == 1 && s.stride == 1; }
bool is_3x3_s1(const Conv2dShape& s) { return s.k == 3 && s.stride == 1; }

// y[n] = b + conv3x3(x[n], w), stride 1, as one GEMM per sample over a zero-padded copy of x[n]: on
// the padded grid (h+2) x (w+2) row (ci, kh, kw) of the im2col matrix is the plane ci shifted by
// kh (w+2) + kw, so the GEMM reads B in place (sgemm_rows) at the cost of computing w+2 columns per
// output row and dropping two. b may be null; y is overwritten.
void conv3x3_s1(const float* x, const float* wt, const float* b, float* y, int64_t n, int64_t cin, int64_t cout,
                int64_t h, int64_t w, const ConvEpilogue<float>& e = {}) {
  const int64_t wp = w + 2, plane = (h + 2) * wp, next = h * wp, kdim = cin * 9;
  std::vector<int64_t> off(static_cast<size_t>(kdim));
  for (int64_t ci = 0; ci < cin; ++ci)
    for (int64_t kh = 0; kh < 3; ++kh)
      for (int64_t kw = 0; kw < 3; ++kw) off[static_cast<size_t>((ci * 3 + kh) * 3 + kw)] = ci * plane + kh * wp + kw;
  parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> xpad, cext;
    xpad.assign(static_cast<size_t>(cin * plane + 8), 0.0f);  // + slack: the last row's two extra columns
    cext.resize(static_cast<size_t>(cout * next));
    for (int64_t i = lo; i < hi; ++i) {
      const float* xi = x + i * cin * h * w;
      for (int64_t ci = 0; ci < cin; ++ci)
        for (int64_t iy = 0; iy < h; ++iy)
          std::copy_n(xi + (ci * h + iy) * w, w, xpad.data() + ci * plane + (iy + 1) * wp + 1);
      sgemm_rows(cout, next, kdim, {wt, kdim, 1}, xpad.data(), off.data(), cext.data(), next, false);
      // The output pass: bias, then the epilogue's per-(sample, channel) bias and residual, added while
      // the GEMM's rows are still in cache (one write of y instead of three read-modify-write passes).
      float* yi = y + i * cout * h * w;
      for (int64_t co = 0; co < cout; ++co) {
        const float bias = b ? b[co] : 0.0f;
        const float cb = e.chan_bias ? e.chan_bias[i * cout + co] : 0.0f;
        const float* res = e.residual ? e.residual + (i * cout + co) * h * w : nullptr;
        for (int64_t oy = 0; oy < h; ++oy) {
          const float* src = cext.data() + co * next + oy * wp;
          float* dst = yi + (co * h + oy) * w;
          if (res) {
            const float* r = res + oy * w;
            for (int64_t ox = 0; ox < w; ++ox) dst[ox] = ((src[ox] + bias) + cb) + r[ox];
          } else if (e.chan_bias) {
            for (int64_t ox = 0; ox < w; ++ox) dst[ox] = (src[ox] + bias) + cb;
          } else {
            for (int64_t ox = 0; ox < w; ++ox) dst[ox] = src[ox] + bias;
          }
        }
      }
    }
  });
}

}  // namespace

void conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                        const ConvEpilogue<float>& e) {
  if (is_3x3_s1(s)) return conv3x3_s1(x, w, b, y, s.n, s.cin, s.cout, s.h, s.w, e);
  const isa::Kernels& K = kernels();
  const int64_t kdim = s.cin * s.k * s.k, pix = s.ho() * s.wo();
  parallel_for(s.n, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * s.cin * s.h * s.w;
      float* yn = y + n * s.cout * pix;
      for (int64_t co = 0; co < s.cout; ++co) std::fill(yn + co * pix, yn + (co + 1) * pix, b ? b[co] : 0.0f);
      if (is_pointwise(s))  // a 1x1 convolution is the product itself: x is B as it lies
        sgemm(s.cout, pix, kdim, {w, kdim, 1}, {xn, pix, 1}, yn, pix, true);
      else  // im2col fused into the GEMM's packing of B
        sgemm_im2col(s.cout, {w, kdim, 1}, xn, s.cin, s.h, s.w, s.k, s.stride, yn, pix, true);
      // The epilogue on this sample's output while it is still in cache.
      for (int64_t co = 0; co < s.cout && !e.empty(); ++co) {
        float* yc = yn + co * pix;
        if (e.chan_bias) K.add_scalar(yc, e.chan_bias[n * s.cout + co], pix);
        if (e.residual) K.add(yc, e.residual + (n * s.cout + co) * pix, pix);
      }
    }
  });
}

void conv2d_backward_f32(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                         const Conv2dShape& s) {
  const int64_t kdim = s.cin * s.k * s.k, pix = s.ho() * s.wo(), plane = s.cin * s.h * s.w;
  const isa::Kernels& K = kernels();
  if (gb) {
    std::vector<double> sums(static_cast<size_t>(s.n * s.cout));
    parallel_for(s.n * s.cout, std::max<int64_t>(1, 16384 / pix), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) sums[static_cast<size_t>(i)] = K.sum(gy + i * pix, pix);
    });
    for (int64_t co = 0; co < s.cout; ++co) {
      double acc = 0;
      for (int64_t n = 0; n < s.n; ++n) acc += sums[static_cast<size_t>(n * s.cout + co)];
      gb[co] += static_cast<float>(acc);
    }
  }
  // Weight gradient gW += sum_n gY_n col_n^T, split over blocks of gW's columns (the (ci, kh, kw) rows
  // of im2col): each block is one thread's, samples add into it in order, and every element's
  // arithmetic is the same whatever the split, so the result does not depend on the thread count.
  // Each block writes only its own rows of each sample's im2col matrix.
  const int64_t block = std::max<int64_t>(32, (kdim / (2 * num_threads()) + 31) / 32 * 32);
  parallel_for(kdim, block, [&](int64_t j0, int64_t j1) {
    thread_local std::vector<float> col;
    for (int64_t n = 0; n < s.n; ++n) {
      const float* xn = x + n * plane;
      const float* src = xn + j0 * pix;  // a 1x1 convolution's im2col matrix is x itself
      if (!is_pointwise(s)) {
        col.resize(static_cast<size_t>((j1 - j0) * pix));
        im2col_rows(xn, col.data(), j0, j1, s);
        src = col.data();
      }
      sgemm(s.cout, j1 - j0, pix, {gy + n * s.cout * pix, pix, 1}, {src, 1, pix}, gw + j0, kdim, true);
    }
  });
  if (!gx) return;
  if (is_3x3_s1(s)) {
    // Stride 1: gx is gY convolved with the flipped, transposed kernel wt[ci, co] = w[co, ci] rotated 180 degrees.
    std::vector<float> wt(static_cast<size_t>(s.cout * kdim));
    for (int64_t co = 0; co < s.cout; ++co)
      for (int64_t ci = 0; ci < s.cin; ++ci)
        for (int t = 0; t < 9; ++t)
          wt[static_cast<size_t>((ci * s.cout + co) * 9 + t)] = w[(co * s.cin + ci) * 9 + (8 - t)];
    return conv3x3_s1(gy, wt.data(), nullptr, gx, s.n, s.cout, s.cin, s.h, s.w);
  }
  // Input gradient: gcol_n = W^T gY_n, then scattered back (col2im); each sample is independent.
  parallel_for(s.n, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> gcol;
    for (int64_t n = lo; n < hi; ++n) {
      const float* gyn = gy + n * s.cout * pix;
      float* gxn = gx + n * plane;
      if (is_pointwise(s)) {
        sgemm(kdim, pix, s.cout, {w, 1, kdim}, {gyn, pix, 1}, gxn, pix, false);
      } else {
        gcol.resize(static_cast<size_t>(kdim * pix));
        sgemm(kdim, pix, s.cout, {w, 1, kdim}, {gyn, pix, 1}, gcol.data(), pix, false);
        std::fill(gxn, gxn + plane, 0.0f);
        col2im(gcol.data(), gxn, s);
      }
    }
  });
}

}  // namespace ks::cpu
