// The float path of GroupNorm + SiLU: per-(sample, group) jobs on the thread pool as groupnorm.cpp, the
// statistics pass of GroupNorm, then one apply pass y = silu(a x + b). Backward: one pass that recomputes u,
// writes du = dL/du into gx and sums it per channel, then GroupNorm's `a du + b x + c` pass over gx in
// place. The parameter gradients add per-(sample, channel) partials in sample order, so no result
// depends on the thread count.
#include <cmath>
#include <vector>
#include "groupnorm_silu.h"
#include "groupnorm_param_grads.h"
#include "isa.h"

namespace ks::cpu {
namespace {
int64_t job_grain(int64_t group_size) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(group_size, 1)); }
}  // namespace

void groupnorm_silu_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                                float* rstd, const GroupNormShape& s) {
  groupnorm_act_forward_f32(x, gamma, beta, y, mean, rstd, s, true);  // u formed as groupnorm_forward_f32's
}

void groupnorm_silu_backward_f32(const float* x, const float* gamma, const float* beta, const float* mean,
                                 const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                 const GroupNormShape& s) {
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  const isa::Kernels& k = kernels();
  std::vector<double> sg(static_cast<size_t>(s.n * s.c)), sgx(static_cast<size_t>(s.n * s.c));
  parallel_for(s.n * s.groups, job_grain(m), [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t c0 = (job % s.groups) * cpg, row0 = (job / s.groups) * s.c + c0;
      const float* in = x + job * m;
      const float* go = gy + job * m;
      float* gi = gx + job * m;
      const float mu = mean[job], rf = rstd[job];
      const double r = rf;
      double s1 = 0, s2 = 0;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const float a = rf * gamma[c0 + cc];
        const float b = beta[c0 + cc] - mu * a;
        double su, sux;
        k.silu_grad_sums(go + cc * s.hw, in + cc * s.hw, gi + cc * s.hw, s.hw, a, b, mu, &su, &sux);
        sg[static_cast<size_t>(row0 + cc)] = su;
        sgx[static_cast<size_t>(row0 + cc)] = sux;
        s1 += gamma[c0 + cc] * su;
        s2 += gamma[c0 + cc] * sux * r;
      }
      s1 /= m;
      s2 /= m;
      // gx = r (du gamma - s1 - xhat s2), xhat = (x - mu) r, with du read back from gx.
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const double a = r * gamma[c0 + cc], b = -r * r * s2, c = -r * s1 + r * r * s2 * mu;
        k.axpbyc(gi + cc * s.hw, in + cc * s.hw, gi + cc * s.hw, s.hw, static_cast<float>(a), static_cast<float>(b),
                 static_cast<float>(c));
      }
    }
  });
  fold_groupnorm_param_grads(sg, sgx, rstd, ggamma, gbeta, s);
}

}  // namespace ks::cpu
