// The float path of conv2d: GEMMs, parallel over samples. Forward packs the im2col matrix straight
// from the image (gemm.h); backward still writes it (its products read it transposed). The double
// path (gradient checks, PyTorch fixtures) stays the direct loops of conv2d.h; the float-vs-double
// UNet test checks this one.
#include <algorithm>
#include <vector>
#include "conv2d.h"
#include "gemm.h"

namespace ks::cpu {
namespace {

// col[(ci, kh, kw), (oy, ox)] = x[ci, oy*stride + kh - pad, ox*stride + kw - pad], zero outside.
void im2col(const float* x, float* col, const Conv2dShape& s) {
  const int64_t ho = s.ho(), wo = s.wo(), pad = s.k / 2;
  for (int64_t ci = 0; ci < s.cin; ++ci)
    for (int kh = 0; kh < s.k; ++kh)
      for (int kw = 0; kw < s.k; ++kw) {
        float* out = col + ((ci * s.k + kh) * s.k + kw) * ho * wo;
        const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
        for (int64_t oy = 0; oy < ho; ++oy) {
          float* row = out + oy * wo;
          const int64_t iy = oy * s.stride + kh - pad;
          if (iy < 0 || iy >= s.h) {
            std::fill(row, row + wo, 0.0f);
            continue;
          }
          const float* in = x + (ci * s.h + iy) * s.w;
          std::fill(row, row + x0, 0.0f);
          if (s.stride == 1)
            std::copy(in + x0 + kw - pad, in + x1 + kw - pad, row + x0);
          else
            for (int64_t ox = x0; ox < x1; ++ox) row[ox] = in[ox * s.stride + kw - pad];
          std::fill(row + x1, row + wo, 0.0f);
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

}  // namespace

void conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
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
    }
  });
}

void conv2d_backward_f32(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                         const Conv2dShape& s) {
  const int64_t ho = s.ho(), wo = s.wo(), kdim = s.cin * s.k * s.k, pix = ho * wo, wsize = s.cout * kdim;
  if (gb)
    for (int64_t co = 0; co < s.cout; ++co) {
      double acc = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const float* g = gy + (n * s.cout + co) * pix;
        for (int64_t p = 0; p < pix; ++p) acc += g[p];
      }
      gb[co] += static_cast<float>(acc);
    }
  // Per-sample weight gradients, added in sample order afterwards: the result does not depend on how
  // samples were spread over threads. Samples go in groups to bound the scratch memory.
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(s.n, (int64_t(64) << 20) / (4 * std::max<int64_t>(wsize, 1))));
  std::vector<float> gws(static_cast<size_t>(group * wsize));
  for (int64_t n0 = 0; n0 < s.n; n0 += group) {
    const int64_t count = std::min(group, s.n - n0);
    parallel_for(count, 1, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<float> col, gcol;
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t n = n0 + j;
        const float* xn = x + n * s.cin * s.h * s.w;
        const float* gyn = gy + n * s.cout * pix;
        const float* src = xn;
        if (!is_pointwise(s)) {
          col.resize(static_cast<size_t>(kdim * pix));
          im2col(xn, col.data(), s);
          src = col.data();
        }
        // gW_n = gY_n (cout x pix) * col^T (pix x kdim)
        sgemm(s.cout, kdim, pix, {gyn, pix, 1}, {src, 1, pix}, gws.data() + j * wsize, kdim, false);
        if (!gx) continue;
        float* gxn = gx + n * s.cin * s.h * s.w;
        if (is_pointwise(s)) {
          // gx_n = W^T (cin x cout) * gY_n
          sgemm(kdim, pix, s.cout, {w, 1, kdim}, {gyn, pix, 1}, gxn, pix, false);
        } else {
          gcol.resize(static_cast<size_t>(kdim * pix));
          sgemm(kdim, pix, s.cout, {w, 1, kdim}, {gyn, pix, 1}, gcol.data(), pix, false);
          std::fill(gxn, gxn + s.cin * s.h * s.w, 0.0f);
          col2im(gcol.data(), gxn, s);
        }
      }
    });
    for (int64_t j = 0; j < count; ++j) {
      const float* g = gws.data() + j * wsize;
      for (int64_t i = 0; i < wsize; ++i) gw[i] += g[i];
    }
  }
}

}  // namespace ks::cpu
