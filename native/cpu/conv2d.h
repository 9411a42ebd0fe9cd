// Convolution, square kernel k (1 or 3), stride 1 or 2, zero padding k/2; weight [cout, cin, k, k].
// Forward and backward, templated on the scalar so gradient checks run in double. Loops are ordered
// so the innermost one runs over contiguous output pixels (vectorisable), and parallel over
// independent outputs only, so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>
#include "kintsugi/nn_shapes.h"
#include "parallel.h"

namespace ks::cpu {

using ks::Conv2dShape;

using ks::ConvEpilogue;

// The float path (conv2d.cpp): GEMMs; the epilogue is added in the output pass of each sample.
void conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                        const ConvEpilogue<float>& e = {});
void conv2d_backward_f32(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                         const Conv2dShape& s);

// y[n, co] = b[co] + sum_ci w[co, ci] * x[n, ci] (shifted); y is overwritten.
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  if constexpr (std::is_same_v<T, float>) return conv2d_forward_f32(x, w, b, y, s);
  const int64_t ho = s.ho(), wo = s.wo(), pad = s.k / 2;
  parallel_for(s.n * s.cout, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / s.cout, co = job % s.cout;
      T* out = y + job * ho * wo;
      std::fill(out, out + ho * wo, b ? b[co] : T(0));
      for (int64_t ci = 0; ci < s.cin; ++ci) {
        const T* in = x + (n * s.cin + ci) * s.h * s.w;
        const T* wk = w + (co * s.cin + ci) * s.k * s.k;
        for (int kh = 0; kh < s.k; ++kh)
          for (int kw = 0; kw < s.k; ++kw) {
            const T wv = wk[kh * s.k + kw];
            for (int64_t oy = 0; oy < ho; ++oy) {
              const int64_t iy = oy * s.stride + kh - pad;
              if (iy < 0 || iy >= s.h) continue;
              const T* row = in + iy * s.w;
              T* orow = out + oy * wo;
              const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
              if (s.stride == 1) {
                const T* r = row + kw - pad;
                for (int64_t ox = x0; ox < x1; ++ox) orow[ox] += wv * r[ox];
              } else {
                for (int64_t ox = x0; ox < x1; ++ox) orow[ox] += wv * row[ox * s.stride + kw - pad];
              }
            }
          }
      }
    }
  });
}

// y = conv(x, w) + b + chan_bias[n, co] + residual (ConvEpilogue, kintsugi/nn_shapes.h): the bias, the
// UNet's time bias and its residual added in the convolution's output pass. The double path adds them
// after the direct loops, in the same order.
template <class T>
void conv2d_forward_fused(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s, const ConvEpilogue<T>& e) {
  if constexpr (std::is_same_v<T, float>) return conv2d_forward_f32(x, w, b, y, s, e);
  conv2d_forward<T>(x, w, b, y, s);
  const int64_t plane = s.ho() * s.wo();
  parallel_for(s.n * s.cout, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T* out = y + i * plane;
      if (e.chan_bias)
        for (int64_t p = 0; p < plane; ++p) out[p] += e.chan_bias[i];
      if (e.residual)
        for (int64_t p = 0; p < plane; ++p) out[p] += e.residual[i * plane + p];
    }
  });
}

// Accumulates gw += dL/dw and gb += dL/db (so several backward passes can add into one gradient), and
// writes gx = dL/dx when gx is not null (overwritten, not accumulated).
template <class T>
void conv2d_backward(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s) {
  if constexpr (std::is_same_v<T, float>) return conv2d_backward_f32(x, w, gy, gx, gw, gb, s);
  const int64_t ho = s.ho(), wo = s.wo(), pad = s.k / 2;
  if (gb) {
    for (int64_t co = 0; co < s.cout; ++co) {
      T acc = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* g = gy + (n * s.cout + co) * ho * wo;
        for (int64_t p = 0; p < ho * wo; ++p) acc += g[p];
      }
      gb[co] += acc;
    }
  }
  // Weight gradient: each (co, ci) pair is independent.
  parallel_for(s.cout * s.cin, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t co = job / s.cin, ci = job % s.cin;
      T* gwk = gw + job * s.k * s.k;
      for (int kh = 0; kh < s.k; ++kh)
        for (int kw = 0; kw < s.k; ++kw) {
          T acc = 0;
          const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
          for (int64_t n = 0; n < s.n; ++n) {
            const T* in = x + (n * s.cin + ci) * s.h * s.w;
            const T* g = gy + (n * s.cout + co) * ho * wo;
            for (int64_t oy = 0; oy < ho; ++oy) {
              const int64_t iy = oy * s.stride + kh - pad;
              if (iy < 0 || iy >= s.h) continue;
              const T* row = in + iy * s.w;
              const T* grow = g + oy * wo;
              for (int64_t ox = x0; ox < x1; ++ox) acc += grow[ox] * row[ox * s.stride + kw - pad];
            }
          }
          gwk[kh * s.k + kw] += acc;
        }
    }
  });
  if (!gx) return;
  // Input gradient: each (n, ci) plane is independent.
  parallel_for(s.n * s.cin, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t n = job / s.cin, ci = job % s.cin;
      T* gin = gx + job * s.h * s.w;
      std::fill(gin, gin + s.h * s.w, T(0));
      for (int64_t co = 0; co < s.cout; ++co) {
        const T* g = gy + (n * s.cout + co) * ho * wo;
        const T* wk = w + (co * s.cin + ci) * s.k * s.k;
        for (int kh = 0; kh < s.k; ++kh)
          for (int kw = 0; kw < s.k; ++kw) {
            const T wv = wk[kh * s.k + kw];
            const int64_t x0 = s.first_col(kw), x1 = s.last_col(kw);
            for (int64_t oy = 0; oy < ho; ++oy) {
              const int64_t iy = oy * s.stride + kh - pad;
              if (iy < 0 || iy >= s.h) continue;
              T* row = gin + iy * s.w;
              const T* grow = g + oy * wo;
              for (int64_t ox = x0; ox < x1; ++ox) row[ox * s.stride + kw - pad] += wv * grow[ox];
            }
          }
      }
    }
  });
}

}  // namespace ks::cpu
