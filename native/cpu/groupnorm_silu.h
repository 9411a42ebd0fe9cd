// GroupNorm followed by SiLU as one op: a = silu(gamma * (x - mean) rstd + beta). Forward writes a, mean
// and rstd and never stores the normalised u; backward takes x, the statistics, gamma, beta and dL/da and
// recomputes u on the fly. The UNet's ResBlocks and output head run this pair before every convolution
// (unet_graph.h), so fusing it saves one write and two reads of an activation forward and the tape's u.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>
#include "groupnorm.h"
#include "kintsugi/nn_shapes.h"
#include "parallel.h"

namespace ks::cpu {

using ks::GroupNormShape;

// The float path (groupnorm_silu.cpp): the selected instruction set's kernels.
void groupnorm_silu_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                                float* rstd, const GroupNormShape& s);
void groupnorm_silu_backward_f32(const float* x, const float* gamma, const float* beta, const float* mean,
                                 const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                 const GroupNormShape& s);

// y = silu(groupnorm(x)); mean, rstd: [n * groups] (as groupnorm_forward). Statistics in double.
template <class T>
void groupnorm_silu_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd,
                            const GroupNormShape& s) {
  if constexpr (std::is_same_v<T, float>) return groupnorm_silu_forward_f32(x, gamma, beta, y, mean, rstd, s);
  groupnorm_act_forward(x, gamma, beta, y, mean, rstd, s, [](T u) { return u / (T(1) + std::exp(-u)); });
}

// gy = dL/dy. gx = dL/dx (overwritten; may alias gy, not x); ggamma, gbeta accumulate. With
// du = gy silu'(u) (u recomputed from x, mean, rstd, gamma, beta), this is GroupNorm's backward of du:
// pass 1 per channel sums du and du (x - mean) (writing du into gx), pass 2 turns du into dL/dx.
template <class T>
void groupnorm_silu_backward(const T* x, const T* gamma, const T* beta, const T* mean, const T* rstd, const T* gy,
                             T* gx, T* ggamma, T* gbeta, const GroupNormShape& s) {
  if constexpr (std::is_same_v<T, float>)
    return groupnorm_silu_backward_f32(x, gamma, beta, mean, rstd, gy, gx, ggamma, gbeta, s);
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  std::vector<double> sdu(static_cast<size_t>(s.n * s.c)), sdux(sdu.size());  // per (sample, channel)
  parallel_for(s.n * s.groups, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t c0 = (job % s.groups) * cpg, row0 = (job / s.groups) * s.c + c0;
      const T* in = x + job * m;
      const T* go = gy + job * m;
      T* gi = gx + job * m;
      const double mu = mean[job], r = rstd[job];
      double s1 = 0, s2 = 0;  // sum gamma du and sum gamma du xhat over the group
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const double g = gamma[c0 + cc], bt = beta[c0 + cc];
        double a = 0, b = 0;
        for (int64_t p = 0; p < s.hw; ++p) {
          const int64_t i = cc * s.hw + p;
          const double xhat = (in[i] - mu) * r, u = g * xhat + bt, sg = 1.0 / (1.0 + std::exp(-u));
          const double du = static_cast<double>(go[i]) * sg * (1.0 + u * (1.0 - sg));
          gi[i] = static_cast<T>(du);
          a += du;
          b += du * xhat;
        }
        sdu[static_cast<size_t>(row0 + cc)] = a;
        sdux[static_cast<size_t>(row0 + cc)] = b;
        s1 += g * a;
        s2 += g * b;
      }
      s1 /= m;
      s2 /= m;
      // dL/dx = r (gamma du - mean(gamma du) - xhat mean(gamma du xhat)).
      for (int64_t cc = 0; cc < cpg; ++cc)
        for (int64_t p = 0; p < s.hw; ++p) {
          const int64_t i = cc * s.hw + p;
          const double xhat = (in[i] - mu) * r;
          gi[i] = static_cast<T>(r * (static_cast<double>(gi[i]) * gamma[c0 + cc] - s1 - xhat * s2));
        }
    }
  });
  for (int64_t ch = 0; ch < s.c; ++ch) {  // parameter gradients: samples added in order
    double a = 0, b = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      a += sdux[static_cast<size_t>(n * s.c + ch)];
      b += sdu[static_cast<size_t>(n * s.c + ch)];
    }
    ggamma[ch] += static_cast<T>(a);
    gbeta[ch] += static_cast<T>(b);
  }
}

}  // namespace ks::cpu
