// The GSURE-Diffusion kernels (docs/gsure.md, docs/methods.md §2): SVD-domain noising, the Hutchinson
// probe shifts, and the loss terms with their gradients. Everything lives in the SVD domain of the
// degradation (x̄ = Vᵀx); the per-coordinate encodings are
//   v = P σ0² / s²   the measurement-noise variance of each observed coordinate, 0 where unobserved,
//   c = P w²         the loss weight (w² = 1 / E[P], density compensation), 0 where unobserved,
// each either one value per element of the batch ([N, ...]) or one set shared by every sample (the
// numel of one sample: a fixed mask). The probes b are drawn inside the kernels: probe row r (row
// b * probes + k is probe k of sample b) uses element r * per_sample + i of randn's draw of `probe_key`,
// so a materialised randn([N * probes, ...]) with the same key gives the same b.
#pragma once
#include <cstdint>
#include <vector>
#include "kintsugi/ops.h"
#include "kintsugi/tensor.h"

namespace ks {

// Backend arguments of gsure_terms (pointers already validated; minus / grad_minus null in forward mode).
struct GsureTermsArgs {
  const float* h = nullptr;      // [n, per]          h̄ = Vᵀ h(x_t)
  const float* plus = nullptr;   // [n * probes, per] h̄ at x̄_t + eps b
  const float* minus = nullptr;  // [n * probes, per] h̄ at x̄_t - eps b (central), or null (forward)
  const float* ybar = nullptr;   // [n, per]
  const float* c = nullptr;      // [n, per] or [per]
  const float* v = nullptr;      // [n, per] or [per]
  int64_t cv_stride = 0;         // per (one set per sample) or 0 (shared)
  const float* kappa = nullptr;  // [n] divergence coefficient per sample
  int64_t n = 0, per_sample = 0;
  int probes = 1;
  float eps = 1e-3f, grad_scale = 1.0f;
  RngKey probe_key;
  float* parts = nullptr;       // [n, 2]: fit, div per sample
  float* grad_h = nullptr;      // [n, per]
  float* grad_plus = nullptr;   // [n * probes, per]
  float* grad_minus = nullptr;  // [n * probes, per] or null
};

// out = x̄_t = √ᾱ_b ȳ + √D ε, D_i = (1 − ᾱ_b) − ᾱ_b v_i, ε element i of randn's draw of `key` (the same
// values as randn(out's shape, key)). alpha_bar holds one ᾱ per sample (host values: the schedule's).
// v_max is the caller's bound on v (σ0² / smallest nonzero s²): D < 0 for some sample is an error
// thrown here, before anything is queued, telling to raise β_1 or restrict t. The kernel also clamps D
// at 0, so float rounding at D ≈ 0 (β_1 = σ0² exactly) can never give a NaN.
void svd_noise(const Tensor& ybar, const Tensor& v, const std::vector<double>& alpha_bar, double v_max, RngKey key,
               const Tensor& out);

// plus = x̄_t[b] + eps b_r and, when minus is given, minus = x̄_t[b] − eps b_r, for the probes rows
// r = b * probes + k of [N * probes, ...] outputs.
void gsure_probe(const Tensor& xt, int probes, float eps, RngKey probe_key, const Tensor& plus, const Tensor* minus);

struct GsureTermsOptions {
  int probes = 1;
  float eps = 1e-3f;        // the finite-difference step used for the probe shifts
  float grad_scale = 1.0f;  // gradients are of grad_scale * Σ_b (fit_b + div_b)
  RngKey probe_key;         // the key gsure_probe used
};
// Per sample b (n = per_sample, K = probes), with d_k = (h̄⁺_k − h̄)/eps (forward) or (h̄⁺_k − h̄⁻_k)/(2 eps):
//   fit_b = (1/n) Σ_i c_i (h̄_i − ȳ_i)²,   div_b = (κ_b / (n K)) Σ_k Σ_i c_i v_i b_ki d_ki,
// written to parts[b] = (fit_b, div_b), and the gradients of grad_scale * Σ_b (fit_b + div_b) with
// respect to h̄, h̄⁺ (and h̄⁻). κ_b: 2√ᾱ_b for the unbiased loss. Outputs must not alias inputs.
void gsure_terms(const Tensor& h, const Tensor& plus, const Tensor* minus, const Tensor& ybar, const Tensor& c,
                 const Tensor& v, const std::vector<double>& kappa, const GsureTermsOptions& options,
                 const Tensor& parts, const Tensor& grad_h, const Tensor& grad_plus, const Tensor* grad_minus);

}  // namespace ks
