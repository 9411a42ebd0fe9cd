// GroupNorm over [n, c, hw] with g groups, biased variance, per-channel affine. Forward keeps the
// per-(n, group) mean and reciprocal standard deviation that backward needs.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>
#include "kintsugi/nn_shapes.h"
#include "parallel.h"

namespace ks::cpu {

using ks::GroupNormShape;

// The float path (groupnorm.cpp): the selected instruction set's kernels.
void groupnorm_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                           const GroupNormShape& s);
void groupnorm_backward_f32(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                            float* gx, float* ggamma, float* gbeta, const GroupNormShape& s);

// The float forward with its activation: y = act(a x + b) per channel, act the identity or SiLU
// (groupnorm_silu.h). One body for both ops, so their statistics and their u are formed identically.
void groupnorm_act_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                               float* rstd, const GroupNormShape& s, bool silu);

// The same in any T, statistics in double: y = act(u), u = x a + b with a = rstd gamma, b = beta - mean a
// (formed in T, as the float path forms them). act: a callable T -> T.
template <class T, class Act>
void groupnorm_act_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, const GroupNormShape& s,
                           Act act) {
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  parallel_for(s.n * s.groups, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const T* in = x + job * m;
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < m; ++i) sum += in[i];
      const double mu = sum / m;
      for (int64_t i = 0; i < m; ++i) sq += (in[i] - mu) * (in[i] - mu);
      const double r = 1.0 / std::sqrt(sq / m + s.eps);
      mean[job] = static_cast<T>(mu);
      rstd[job] = static_cast<T>(r);
      const int64_t c0 = (job % s.groups) * cpg;
      T* out = y + job * m;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const T a = static_cast<T>(r) * gamma[c0 + cc];
        const T b = beta[c0 + cc] - static_cast<T>(mu) * a;
        for (int64_t p = 0; p < s.hw; ++p) out[cc * s.hw + p] = act(in[cc * s.hw + p] * a + b);
      }
    }
  });
}

// mean, rstd: [n * groups]. Statistics accumulate in double whatever T is.
template <class T>
void groupnorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd, const GroupNormShape& s) {
  if constexpr (std::is_same_v<T, float>) return groupnorm_forward_f32(x, gamma, beta, y, mean, rstd, s);
  groupnorm_act_forward(x, gamma, beta, y, mean, rstd, s, [](T u) { return u; });
}

// gx = dL/dx (overwritten; may alias nothing); ggamma, gbeta accumulate.
template <class T>
void groupnorm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* gy, T* gx, T* ggamma,
                        T* gbeta, const GroupNormShape& s) {
  if constexpr (std::is_same_v<T, float>) return groupnorm_backward_f32(x, gamma, mean, rstd, gy, gx, ggamma, gbeta, s);
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  // Parameter gradients: per channel, summed over the batch in a fixed order.
  for (int64_t ch = 0; ch < s.c; ++ch) {
    const int64_t g = ch / cpg;
    double sg = 0, sb = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      const int64_t job = n * s.groups + g;
      const T* in = x + (n * s.c + ch) * s.hw;
      const T* go = gy + (n * s.c + ch) * s.hw;
      for (int64_t p = 0; p < s.hw; ++p) {
        sg += go[p] * (in[p] - mean[job]) * rstd[job];
        sb += go[p];
      }
    }
    ggamma[ch] += static_cast<T>(sg);
    gbeta[ch] += static_cast<T>(sb);
  }
  parallel_for(s.n * s.groups, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t c0 = (job % s.groups) * cpg;
      const T* in = x + job * m;
      const T* go = gy + job * m;
      T* gi = gx + job * m;
      const double mu = mean[job], r = rstd[job];
      // dxhat = gy * gamma; gx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
      double s1 = 0, s2 = 0;
      for (int64_t cc = 0; cc < cpg; ++cc)
        for (int64_t p = 0; p < s.hw; ++p) {
          const double d = static_cast<double>(go[cc * s.hw + p]) * gamma[c0 + cc];
          s1 += d;
          s2 += d * (in[cc * s.hw + p] - mu) * r;
        }
      s1 /= m;
      s2 /= m;
      for (int64_t cc = 0; cc < cpg; ++cc)
        for (int64_t p = 0; p < s.hw; ++p) {
          const int64_t i = cc * s.hw + p;
          const double xhat = (in[i] - mu) * r;
          gi[i] = static_cast<T>(r * (static_cast<double>(go[i]) * gamma[c0 + cc] - s1 - xhat * s2));
        }
    }
  });
}

}  // namespace ks::cpu
