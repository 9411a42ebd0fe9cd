// GroupNorm followed by SiLU as one op, a = silu(gamma (x - mean) rstd + beta), laid out as groupnorm.cu:
// one block per (sample, group), statistics in double reduced in a fixed tree order, no atomics. Forward
// is the statistics pass and one apply pass (u never written). Backward recomputes u and
// du = dL/da silu'(u) in both of its passes (the per-channel sums of du and du xhat, then the apply)
// rather than storing du: on a GPU the two exp per element cost less than a write and a read.
#include <cmath>
#include "common.cuh"
#include "nn.h"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

__device__ inline float silu_of(float u) { return u / (1.0f + expf(-u)); }
// dL/du for dL/da = g at u: g silu'(u) = g s (1 + u (1 - s)), s = sigmoid(u).
__device__ inline float silu_grad(float g, float u) {
  const float s = 1.0f / (1.0f + expf(-u));
  return g * s * (1.0f + u * (1.0f - s));
}

// Launch: grid-stride over jobs = n * groups, one block of 256 threads per job; thread t handles the
// elements t, t + 256, ... of the group's contiguous m = (c / groups) * hw values.
__global__ void __launch_bounds__(kThreads)
    groupnorm_silu_forward_kernel(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                                  float* rstd, GroupNormShape s) {
  const int64_t cpg = s.c / s.groups, m = cpg * s.hw, jobs = s.n * s.groups;
  for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const float* in = x + job * m;
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) sum += in[i];
    const double mu = block_sum<kThreads>(sum) / static_cast<double>(m);
    double sq = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) {
      const double d = in[i] - mu;
      sq += d * d;
    }
    const double r = 1.0 / sqrt(block_sum<kThreads>(sq) / static_cast<double>(m) + s.eps);
    if (threadIdx.x == 0) {
      mean[job] = static_cast<float>(mu);
      rstd[job] = static_cast<float>(r);
    }
    // y null: statistics only (the tensor-core conv applies the normalisation in its loader, cuda/unet.cu).
    if (y == nullptr) continue;
    // u = x * a + b per channel with a and b rounded to float, as groupnorm_forward and the CPU form it.
    const float rf = static_cast<float>(r), muf = static_cast<float>(mu);
    const int64_t c0 = (job % s.groups) * cpg;
    float* out = y + job * m;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) {
      const int64_t ch = c0 + i / s.hw;
      const float a = rf * gamma[ch];
      const float b = beta[ch] - muf * a;
      out[i] = silu_of(in[i] * a + b);
    }
  }
}

// Launch: as the forward. For each channel ch of the group: sb = sum du, sg = sum du xhat (double, block
// tree), stored to part[nb * c + ch] and part[n * c + nb * c + ch]; then gx = rstd (du gamma - mean(du
// gamma) - xhat mean(du gamma xhat)), du recomputed.
__global__ void __launch_bounds__(kThreads)
    groupnorm_silu_backward_kernel(const float* x, const float* gamma, const float* beta, const float* mean,
                                   const float* rstd, const float* gy, float* gx, double* part, GroupNormShape s) {
  const int64_t cpg = s.c / s.groups, m = cpg * s.hw, jobs = s.n * s.groups;
  for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int64_t nb = job / s.groups, c0 = (job % s.groups) * cpg;
    const float* in = x + job * m;
    const float* go = gy + job * m;
    const float mu = mean[job], r = rstd[job];
    double s1 = 0.0, s2 = 0.0;
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = c0 + cc;
      const float a = r * gamma[ch], b = beta[ch] - mu * a;
      double sb = 0.0, sg = 0.0;
      for (int64_t p = threadIdx.x; p < s.hw; p += kThreads) {
        const float xv = in[cc * s.hw + p];
        const float du = silu_grad(go[cc * s.hw + p], xv * a + b);
        sb += du;
        sg += du * ((xv - mu) * r);
      }
      sb = block_sum<kThreads>(sb);
      sg = block_sum<kThreads>(sg);
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
      const int64_t ch = c0 + i / s.hw;
      const float a = r * gamma[ch], b = beta[ch] - mu * a;
      const float xv = in[i];
      const float du = silu_grad(go[i], xv * a + b);
      const float xhat = (xv - mu) * r;
      gi[i] = r * (du * gamma[ch] - mean_d - xhat * mean_dx);
    }
  }
}

unsigned job_blocks(int64_t jobs) { return static_cast<unsigned>(jobs < 65535 ? jobs : 65535); }

}  // namespace

void groupnorm_silu_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                            const GroupNormShape& s) {
  const int64_t jobs = s.n * s.groups;
  if (jobs == 0) return;
  groupnorm_silu_forward_kernel<<<job_blocks(jobs), kThreads, 0, stream()>>>(x, gamma, beta, y, mean, rstd, s);
  KS_CUDA_LAUNCHED(groupnorm_silu_forward);
}

void groupnorm_silu_backward(const float* x, const float* gamma, const float* beta, const float* mean,
                             const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                             const GroupNormShape& s) {
  const int64_t jobs = s.n * s.groups;
  if (jobs == 0) return;
  Scratch<double> part(2 * s.n * s.c);  // [2, n, c]: sb, then sg
  groupnorm_silu_backward_kernel<<<job_blocks(jobs), kThreads, 0, stream()>>>(x, gamma, beta, mean, rstd, gy, gx,
                                                                              part.get(), s);
  KS_CUDA_LAUNCHED(groupnorm_silu_backward);
  groupnorm_fold_param_grads(part.get(), s.n, s.c, ggamma, gbeta);  // shared with groupnorm_backward
}

}  // namespace ks::cuda
