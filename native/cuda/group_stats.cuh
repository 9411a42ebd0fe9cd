// GroupNorm's statistics of one (sample, group) over a thread block, as groupnorm_forward,
// groupnorm_silu_forward (and the CPU reference) form them: two passes in double (the mean, then the
// squared deviations from it), each reduced by block_sum's fixed tree, biased variance. One definition,
// so that every kernel that needs them gives the same bits.
#pragma once
#include "reduce.cuh"

namespace ks::cuda {

// at(i) -> float: element i of the group's m values (thread t reads t, t + kThreads, ...). Every thread of
// the block must call it (block_sum has barriers); all get mu and r = 1 / sqrt(var + eps).
template <int kThreads, class At>
__device__ void group_stats(const At& at, int64_t m, double eps, double& mu, double& r) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < m; i += kThreads) sum += at(i);
  mu = block_sum<kThreads>(sum) / static_cast<double>(m);
  double sq = 0.0;
  for (int64_t i = threadIdx.x; i < m; i += kThreads) {
    const double d = at(i) - mu;
    sq += d * d;
  }
  r = 1.0 / sqrt(block_sum<kThreads>(sq) / static_cast<double>(m) + eps);
}

}  // namespace ks::cuda
