// The last step of the float GroupNorm backwards (groupnorm.cpp, groupnorm_silu.cpp): fold the
// per-(sample, channel) partial sums into the parameter gradients. Shared so that both ops add their
// partials in the same order, sample by sample, whatever the thread count.
#pragma once
#include <cstdint>
#include <vector>
#include "kintsugi/nn_shapes.h"

namespace ks::cpu {

// sg[n * c + ch] = sum over the channel's pixels of dL/du, sgx[n * c + ch] = the same of dL/du (x - mean),
// u the normalised value (before gamma, beta). Adds
//   ggamma[ch] += sum_n sgx[n, ch] rstd[n, group(ch)],   gbeta[ch] += sum_n sg[n, ch]
// in double, n in increasing order, rounded to float once per channel.
inline void fold_groupnorm_param_grads(const std::vector<double>& sg, const std::vector<double>& sgx, const float* rstd,
                                       float* ggamma, float* gbeta, const GroupNormShape& s) {
  const int64_t cpg = s.c / s.groups;
  for (int64_t ch = 0; ch < s.c; ++ch) {
    const int64_t g = ch / cpg;
    double a = 0, b = 0;
    for (int64_t n = 0; n < s.n; ++n) {
      const size_t i = static_cast<size_t>(n * s.c + ch);
      b += sg[i];
      a += sgx[i] * rstd[n * s.groups + g];
    }
    ggamma[ch] += static_cast<float>(a);
    gbeta[ch] += static_cast<float>(b);
  }
}

}  // namespace ks::cpu
