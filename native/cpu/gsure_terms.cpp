// The GSURE loss terms and their gradients in one pass (kintsugi/gsure.h): one sample per task, sums
// in double in index order, so the result does not depend on the thread count.
#include <cmath>
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"
#include "parallel.h"

namespace ks::cpu {

void gsure_terms(const GsureTermsArgs& a) {
  const int64_t per = a.per_sample;
  const int K = a.probes;
  const bool central = a.minus != nullptr;
  // d_k = (h̄⁺ − h̄)/eps or (h̄⁺ − h̄⁻)/(2 eps): the step's reciprocal folded into one factor.
  const double inv_step = central ? 0.5 / a.eps : 1.0 / a.eps;
  parallel_for(a.n, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const double div_coef = static_cast<double>(a.kappa[b]) / (static_cast<double>(per) * K);
      const float gfit = static_cast<float>(2.0 * a.grad_scale / per);
      const float gdiv = static_cast<float>(a.grad_scale * div_coef * inv_step);
      double fit = 0, div = 0;
      for (int64_t i = 0; i < per; ++i) {
        const int64_t e = b * per + i, cv = b * a.cv_stride + i;
        const float c = a.c[cv], cvv = c * a.v[cv];
        const float r = a.h[e] - a.ybar[e];
        fit += static_cast<double>(c) * r * r;
        float probe_sum = 0;
        for (int k = 0; k < K; ++k) {
          const int64_t pe = (b * K + k) * per + i;
          const float z =
              philox_normal_at(a.probe_key.seed, a.probe_key.offset, a.probe_key.stream, static_cast<uint64_t>(pe));
          const double diff =
              central ? static_cast<double>(a.plus[pe]) - a.minus[pe] : static_cast<double>(a.plus[pe]) - a.h[e];
          div += static_cast<double>(cvv) * z * diff;
          a.grad_plus[pe] = gdiv * cvv * z;
          if (central) a.grad_minus[pe] = -(gdiv * cvv * z);
          probe_sum += z;
        }
        // Forward differences also subtract h̄ once per probe.
        a.grad_h[e] = gfit * c * r - (central ? 0.0f : gdiv * cvv * probe_sum);
      }
      a.parts[2 * b] = static_cast<float>(fit / per);
      a.parts[2 * b + 1] = static_cast<float>(div * div_coef * inv_step);
    }
  });
}

}  // namespace ks::cpu
