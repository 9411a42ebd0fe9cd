// GroupNorm followed by SiLU as one op, a = silu(gamma (x - mean) rstd + beta), laid out as groupnorm.cu:
// one block per (sample, group), statistics in double reduced in a fixed tree order, no atomics. Forward
// is the statistics pass and one apply pass (u never written). Backward recomputes u and
// du = dL/da silu'(u) in both of its passes (the per-channel sums of du and du xhat, then the apply)
// rather than storing du: on a GPU the two exp per element cost less than a write and a read.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include "common.cuh"
#include "nn.h"
#include "group_stats.cuh"
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
    double mu, r;
    group_stats<kThreads>([in](int64_t i) { return in[i]; }, m, s.eps, mu, r);
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

// Where the backward's apply pass writes dL/dx, and what it adds and sums on the way (GnSiluBackwardFolds,
// nn.h; checked on the host): out(nb, ch, p) is gx[nb, ch, p], or with a split (gx2 non-null) gx[nb, ch,
// p] for ch < c1 and gx2[nb, ch - c1, p] otherwise; the addend is read at the same place (addend / addend2)
// before the write. sums non-null: the per-(nb, ch) sums of the written values, as channel_sums forms them.
struct Out {
  float* gx;
  float* gx2;
  const float* add;
  const float* add2;
  float* sums;
  int64_t c1;
  __device__ int64_t at(int64_t nb, int64_t ch, int64_t p, int64_t c, int64_t hw, bool& second) const {
    second = gx2 != nullptr && ch >= c1;
    if (gx2 == nullptr) return (nb * c + ch) * hw + p;
    return second ? (nb * (c - c1) + (ch - c1)) * hw + p : (nb * c1 + ch) * hw + p;
  }
};

// Launch: as the forward. For each channel ch of the group: sb = sum du, sg = sum du xhat (double, block
// tree), stored to part[nb * c + ch] and part[n * c + nb * c + ch]; then gx = rstd (du gamma - mean(du
// gamma) - xhat mean(du gamma xhat)), du recomputed. The plain variant (o.gx2, o.add, o.sums all null)
// runs the flat apply loop it always had; the folded one walks channel by channel (thread t: pixels t,
// t + 256, ..., then block_sum: channel_sums' order, so o.sums is bit for bit channel_sums of the output).
// Each element's arithmetic is the same in both loops, the addend added last. x2 non-null: x is split at
// xc1 (the concat's halves, GnSiluBackwardFolds::x2); the folded loop then reads it channel by channel.
__global__ void __launch_bounds__(kThreads)
    groupnorm_silu_backward_kernel(const float* x, const float* gamma, const float* beta, const float* mean,
                                   const float* rstd, const float* gy, const float* x2, int64_t xc1, Out o,
                                   double* part, GroupNormShape s) {
  const int64_t cpg = s.c / s.groups, m = cpg * s.hw, jobs = s.n * s.groups;
  const bool folded = o.gx2 != nullptr || o.add != nullptr || o.sums != nullptr || x2 != nullptr;
  for (int64_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int64_t nb = job / s.groups, c0 = (job % s.groups) * cpg;
    // Channel c0 + cc of x starts at in + cc * hw, or with the split input (x2) at chan(cc): one pointer
    // per channel, so the element loops below index as for a whole tensor.
    const float* in = x + job * m;
    auto chan = [&](int64_t cc) -> const float* {
      if (x2 == nullptr) return in + cc * s.hw;
      const int64_t ch = c0 + cc;
      return ch < xc1 ? x + (nb * xc1 + ch) * s.hw : x2 + (nb * (s.c - xc1) + (ch - xc1)) * s.hw;
    };
    const float* go = gy + job * m;
    const float mu = mean[job], r = rstd[job];
    double s1 = 0.0, s2 = 0.0;
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = c0 + cc;
      const float a = r * gamma[ch], b = beta[ch] - mu * a;
      double sb = 0.0, sg = 0.0;
      const float* xc = chan(cc);
      for (int64_t p = threadIdx.x; p < s.hw; p += kThreads) {
        const float xv = xc[p];
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
    if (!folded) {
      float* gi = o.gx + job * m;
      for (int64_t i = threadIdx.x; i < m; i += kThreads) {
        const int64_t ch = c0 + i / s.hw;
        const float a = r * gamma[ch], b = beta[ch] - mu * a;
        const float xv = in[i];
        const float du = silu_grad(go[i], xv * a + b);
        const float xhat = (xv - mu) * r;
        gi[i] = r * (du * gamma[ch] - mean_d - xhat * mean_dx);
      }
      continue;
    }
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = c0 + cc;
      const float a = r * gamma[ch], b = beta[ch] - mu * a;
      double sum = 0.0;
      const float* xc = chan(cc);
      for (int64_t p = threadIdx.x; p < s.hw; p += kThreads) {
        const float xv = xc[p];
        const float du = silu_grad(go[cc * s.hw + p], xv * a + b);
        const float xhat = (xv - mu) * r;
        float v = r * (du * gamma[ch] - mean_d - xhat * mean_dx);
        bool second;
        const int64_t at = o.at(nb, ch, p, s.c, s.hw, second);
        const float* add = second ? o.add2 : o.add;
        if (add != nullptr) v = add[at] + v;
        (second ? o.gx2 : o.gx)[at] = v;
        sum += v;
      }
      if (o.sums != nullptr) {  // uniform over the block: every thread reaches block_sum's barriers
        sum = block_sum<kThreads>(sum);
        if (threadIdx.x == 0) o.sums[nb * s.c + ch] = static_cast<float>(sum);
      }
    }
  }
}

// gb[ch] += sum over nb of sums[nb, ch] in float, nb in increasing order: conv2d_bias_backward's fold
// (conv2d.cu's fold_partials), so the bias gradient is bit for bit the unfused one.
// Rows of sums are `stride` long (c: the channels folded, a prefix of the row).
__global__ void channel_sums_fold(const float* sums, int64_t n, int64_t c, int64_t stride, float* gb) {
  for (int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ch < c; ch += int64_t(gridDim.x) * blockDim.x) {
    float t = 0.0f;
    for (int64_t nb = 0; nb < n; ++nb) t += sums[nb * stride + ch];
    gb[ch] += t;
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
  groupnorm_silu_backward_folded(x, gamma, beta, mean, rstd, gy, gx, ggamma, gbeta, s, GnSiluBackwardFolds{});
}

void groupnorm_silu_backward_folded(const float* x, const float* gamma, const float* beta, const float* mean,
                                    const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    const GroupNormShape& s, const GnSiluBackwardFolds& f) {
  const std::string at = "groupnorm_silu_backward_folded: ";
  if (f.gx2 != nullptr && !(f.c1 > 0 && f.c1 < s.c))
    throw std::invalid_argument(at + "GnSiluBackwardFolds.c1 must be in (0, c = " + std::to_string(s.c) +
                                ") with gx2 set (the split), got " + std::to_string(f.c1));
  if ((f.addend2 != nullptr) != (f.gx2 != nullptr && f.addend != nullptr))
    throw std::invalid_argument(at +
                                "GnSiluBackwardFolds.addend2 goes with gx2 and addend (the split addend's "
                                "channels [c1, c)): set all three or leave addend2 null");
  if (f.gx2 != nullptr && (gx == gy || f.gx2 == gy))
    throw std::invalid_argument(at + "gx and GnSiluBackwardFolds.gx2 may not alias gy with a split (other layout)");
  if (f.x2 != nullptr && !(f.c1 > 0 && f.c1 < s.c))
    throw std::invalid_argument(at + "GnSiluBackwardFolds.c1 must be in (0, c = " + std::to_string(s.c) +
                                ") with x2 set (the split input), got " + std::to_string(f.c1));
  if (f.bias_grad2 != nullptr && f.gx2 == nullptr)
    throw std::invalid_argument(at + "GnSiluBackwardFolds.bias_grad2 is the split's second bias: it needs gx2");
  const int64_t jobs = s.n * s.groups;
  if (jobs == 0) return;
  const bool want_sums = f.channel_sums != nullptr || f.bias_grad != nullptr;
  Scratch<double> part(2 * s.n * s.c);  // [2, n, c]: sb, then sg
  std::unique_ptr<Scratch<float>> own;  // the [n, c] sums when only the bias gradient is asked for
  float* sums = f.channel_sums;
  if (want_sums && sums == nullptr) own = std::make_unique<Scratch<float>>(s.n * s.c), sums = own->get();
  const Out o{gx, f.gx2, f.addend, f.addend2, want_sums ? sums : nullptr, f.gx2 != nullptr ? f.c1 : s.c};
  groupnorm_silu_backward_kernel<<<job_blocks(jobs), kThreads, 0, stream()>>>(x, gamma, beta, mean, rstd, gy, f.x2,
                                                                              f.c1, o, part.get(), s);
  KS_CUDA_LAUNCHED(groupnorm_silu_backward);
  groupnorm_fold_param_grads(part.get(), s.n, s.c, ggamma, gbeta);  // shared with groupnorm_backward
  if (f.bias_grad != nullptr) {
    // Channels [0, c1) into bias_grad, [c1, c) into bias_grad2 (split), or all c into bias_grad. The
    // sums' rows are c long: fold the two ranges as two [n, c] views with a stride.
    const int64_t c1 = f.bias_grad2 != nullptr ? f.c1 : s.c;
    channel_sums_fold<<<grid_for(c1), 256, 0, stream()>>>(sums, s.n, c1, s.c, f.bias_grad);
    KS_CUDA_LAUNCHED(channel_sums_fold);
    if (f.bias_grad2 != nullptr) {
      channel_sums_fold<<<grid_for(s.c - c1), 256, 0, stream()>>>(sums + c1, s.n, s.c - c1, s.c, f.bias_grad2);
      KS_CUDA_LAUNCHED(channel_sums_fold);
    }
  }
}

}  // namespace ks::cuda
