// The float path of GroupNorm: per-(sample, group) jobs on the thread pool, each pass one of the
// selected instruction set's kernels. Sums run in float vector lanes over blocks of 1024 and are
// combined in double (the double path of groupnorm.h keeps everything in double); the parameter
// gradients add per-(sample, channel) partials in sample order, so no result depends on the thread count.
#include <cmath>
#include <vector>
#include "groupnorm.h"
#include "groupnorm_param_grads.h"
#include "isa.h"

namespace ks::cpu {
namespace {
// Jobs per chunk: about 16K elements of work each, so small groups do not pay one pool task apiece.
int64_t job_grain(int64_t group_size) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(group_size, 1)); }
}  // namespace

void groupnorm_act_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                               float* rstd, const GroupNormShape& s, bool silu) {
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  const isa::Kernels& k = kernels();
  parallel_for(s.n * s.groups, job_grain(m), [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const float* in = x + job * m;
      const double mu = k.sum(in, m) / m;
      const double r = 1.0 / std::sqrt(k.sq_dev(in, m, static_cast<float>(mu)) / m + s.eps);
      mean[job] = static_cast<float>(mu);
      rstd[job] = static_cast<float>(r);
      const int64_t c0 = (job % s.groups) * cpg;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const float a = static_cast<float>(r) * gamma[c0 + cc];
        const float b = beta[c0 + cc] - static_cast<float>(mu) * a;
        if (silu)
          k.affine_silu(in + cc * s.hw, y + job * m + cc * s.hw, s.hw, a, b);
        else
          k.affine(in + cc * s.hw, y + job * m + cc * s.hw, s.hw, a, b);
      }
    }
  });
}

void groupnorm_forward_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                           const GroupNormShape& s) {
  groupnorm_act_forward_f32(x, gamma, beta, y, mean, rstd, s, false);
}

void groupnorm_backward_f32(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                            float* gx, float* ggamma, float* gbeta, const GroupNormShape& s) {
  const int64_t cpg = s.c / s.groups, m = s.group_size();
  const isa::Kernels& k = kernels();
  // Per (sample, channel): sum(gy) and sum(gy (x - mean)), the only reductions backward needs.
  std::vector<double> sg(static_cast<size_t>(s.n * s.c)), sgx(static_cast<size_t>(s.n * s.c));
  parallel_for(s.n * s.groups, job_grain(m), [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t c0 = (job % s.groups) * cpg, row0 = (job / s.groups) * s.c + c0;
      const float* in = x + job * m;
      const float* go = gy + job * m;
      const float mu = mean[job];
      const double r = rstd[job];
      double s1 = 0, s2 = 0;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        double a, b;
        k.sum_gx(go + cc * s.hw, in + cc * s.hw, s.hw, mu, &a, &b);
        sg[static_cast<size_t>(row0 + cc)] = a;
        sgx[static_cast<size_t>(row0 + cc)] = b;
        s1 += gamma[c0 + cc] * a;
        s2 += gamma[c0 + cc] * b * r;
      }
      s1 /= m;
      s2 /= m;
      // gx = r (gy gamma - s1 - xhat s2), xhat = (x - mu) r: one a gy + b x + c pass per channel.
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const double a = r * gamma[c0 + cc], b = -r * r * s2, c = -r * s1 + r * r * s2 * mu;
        k.axpbyc(go + cc * s.hw, in + cc * s.hw, gx + job * m + cc * s.hw, s.hw, static_cast<float>(a),
                 static_cast<float>(b), static_cast<float>(c));
      }
    }
  });
  fold_groupnorm_param_grads(sg, sgx, rstd, ggamma, gbeta, s);
}

}  // namespace ks::cpu
