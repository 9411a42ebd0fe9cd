// The GSURE loss terms and their gradients in one pass (kintsugi/gsure.h): one thread block per
// sample; every element's gradient is written where it is read, and the two per-sample sums go
// through the fixed-order block reduction (double), so results are the same run to run.
#include "common.cuh"
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void gsure_terms_kernel(GsureTermsArgs a) {
  const int64_t b = blockIdx.x, per = a.per_sample;
  const int K = a.probes;
  const bool central = a.minus != nullptr;
  const double inv_step = central ? 0.5 / a.eps : 1.0 / a.eps;
  const double div_coef = static_cast<double>(a.kappa[b]) / (static_cast<double>(per) * K);
  const float gfit = static_cast<float>(2.0 * a.grad_scale / per);
  const float gdiv = static_cast<float>(a.grad_scale * div_coef * inv_step);
  double fit = 0, div = 0;
  for (int64_t i = threadIdx.x; i < per; i += kThreads) {
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
      const float g = gdiv * cvv * z;
      a.grad_plus[pe] = g;
      if (central) a.grad_minus[pe] = -g;
      probe_sum += z;
    }
    // Forward differences also subtract h̄ once per probe.
    a.grad_h[e] = gfit * c * r - (central ? 0.0f : gdiv * cvv * probe_sum);
  }
  fit = block_sum<kThreads>(fit);
  div = block_sum<kThreads>(div);
  if (threadIdx.x == 0) {
    a.parts[2 * b] = static_cast<float>(fit / per);
    a.parts[2 * b + 1] = static_cast<float>(div * div_coef * inv_step);
  }
}

}  // namespace

void gsure_terms(const GsureTermsArgs& a) {
  if (a.n == 0) return;
  gsure_terms_kernel<<<static_cast<unsigned>(a.n), kThreads, 0, stream()>>>(a);
  KS_CUDA_LAUNCHED(gsure_terms);
}

}  // namespace ks::cuda
