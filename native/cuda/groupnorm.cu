// GroupNorm over [n, c, hw] in groups of c / groups channels, biased variance, per-channel affine.
// One block per (sample, group): statistics in double, two passes (mean, then squared deviations) as
// the CPU reference does, reduced over the block in a fixed tree order. Backward computes per-channel
// sums of gy and gy * xhat for each sample; they give both the input gradient's two group means and,
// added over the batch in order by a second kernel, the parameter gradients. No atomics anywhere.
#include <cmath>
#include "common.cuh"
#include "nn.h"
#include "group_stats.cuh"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

// Launch: grid-stride over jobs = n * groups, one block of 256 threads per job; thread t handles the
// elements t, t + 256, ... of the group's contiguous m = (c / groups) * hw values.
__global__ void __launch_bounds__(kThreads)
    groupnorm_forward_kernel(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                             GroupNormShape s) {
  const int64_t cpg = s.c / s.groups, m = cpg * s.hw, jobs = s.n * s.groups;  // m: group_size(), host-only
  for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const float* in = x + job * m;
    double mu, r;
    group_stats<kThreads>([in](int64_t i) { return in[i]; }, m, s.eps, mu, r);
    if (threadIdx.x == 0) {
      mean[job] = static_cast<float>(mu);
      rstd[job] = static_cast<float>(r);
    }
    // y = x * a + b per channel, with a and b rounded to float as the reference does.
    const float rf = static_cast<float>(r), muf = static_cast<float>(mu);
    const int64_t c0 = (job % s.groups) * cpg;
    float* out = y + job * m;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) {
      const int64_t ch = c0 + i / s.hw;
      const float a = rf * gamma[ch];
      const float b = beta[ch] - muf * a;
      out[i] = in[i] * a + b;
    }
  }
}

// Launch: as the forward, one block per (sample nb, group). For each channel ch of the group:
// sb = sum gy, sg = sum gy * xhat (double, block tree), stored to part[nb * c + ch] (sb) and
// part[n * c + nb * c + ch] (sg). With d = gy * gamma: mean(d) = sum_ch gamma[ch] sb / m and
// mean(d * xhat) = sum_ch gamma[ch] sg / m, and gx = rstd * (d - mean(d) - xhat * mean(d * xhat)).
// The sums are in double; the per-element pass in float.
__global__ void __launch_bounds__(kThreads)
    groupnorm_backward_kernel(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                              float* gx, double* part, GroupNormShape s) {
  const int64_t cpg = s.c / s.groups, m = cpg * s.hw, jobs = s.n * s.groups;  // m: group_size(), host-only
  for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int64_t nb = job / s.groups, c0 = (job % s.groups) * cpg;
    const float* in = x + job * m;
    const float* go = gy + job * m;
    const float mu = mean[job], r = rstd[job];
    double s1 = 0.0, s2 = 0.0;
    for (int64_t cc = 0; cc < cpg; ++cc) {
      double sb = 0.0, sg = 0.0;
      for (int64_t p = threadIdx.x; p < s.hw; p += kThreads) {
        const float g = go[cc * s.hw + p];
        sb += g;
        sg += g * ((in[cc * s.hw + p] - mu) * r);
      }
      sb = block_sum<kThreads>(sb);
      sg = block_sum<kThreads>(sg);
      const int64_t ch = c0 + cc;
      if (threadIdx.x == 0) {
        part[nb * s.c + ch] = sb;
        part[s.n * s.c + nb * s.c + ch] = sg;
      }
      s1 += static_cast<double>(gamma[ch]) * sb;
      s2 += static_cast<double>(gamma[ch]) * sg;
    }
    const float mean_d = static_cast<float>(s1 / static_cast<double>(m));
    const float mean_dx = static_cast<float>(s2 / static_cast<double>(m));
    float* gi = gx + job * m;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) {
      const float xhat = (in[i] - mu) * r;
      gi[i] = r * (go[i] * gamma[c0 + i / s.hw] - mean_d - xhat * mean_dx);
    }
  }
}

// ggamma[ch] += sum over nb of sg[nb, ch]; gbeta[ch] += sum over nb of sb[nb, ch], nb in increasing order.
// Launch: grid-stride, one thread per channel.
__global__ void groupnorm_param_grads(const double* part, int64_t n, int64_t c, float* ggamma, float* gbeta) {
  for (int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ch < c; ch += int64_t(gridDim.x) * blockDim.x) {
    double sb = 0.0, sg = 0.0;
    for (int64_t nb = 0; nb < n; ++nb) {
      sb += part[nb * c + ch];
      sg += part[n * c + nb * c + ch];
    }
    ggamma[ch] += static_cast<float>(sg);
    gbeta[ch] += static_cast<float>(sb);
  }
}

unsigned job_blocks(int64_t jobs) { return static_cast<unsigned>(jobs < 65535 ? jobs : 65535); }

}  // namespace

void groupnorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                       const GroupNormShape& s) {
  const int64_t jobs = s.n * s.groups;
  if (jobs == 0) return;
  groupnorm_forward_kernel<<<job_blocks(jobs), kThreads, 0, stream()>>>(x, gamma, beta, y, mean, rstd, s);
  KS_CUDA_LAUNCHED(groupnorm_forward);
}

void groupnorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* gy,
                        float* gx, float* ggamma, float* gbeta, const GroupNormShape& s) {
  const int64_t jobs = s.n * s.groups;
  if (jobs == 0) return;
  Scratch<double> part(2 * s.n * s.c);  // [2, n, c]: sb, then sg
  groupnorm_backward_kernel<<<job_blocks(jobs), kThreads, 0, stream()>>>(x, gamma, mean, rstd, gy, gx, part.get(), s);
  KS_CUDA_LAUNCHED(groupnorm_backward);
  groupnorm_fold_param_grads(part.get(), s.n, s.c, ggamma, gbeta);
}

void groupnorm_fold_param_grads(const double* part, int64_t n, int64_t c, float* ggamma, float* gbeta) {
  groupnorm_param_grads<<<grid_for(c), 256, 0, stream()>>>(part, n, c, ggamma, gbeta);
  KS_CUDA_LAUNCHED(groupnorm_param_grads);
}

}  // namespace ks::cuda
