// The GSURE ops (kintsugi/gsure.h): one registry row each and its checks. Per-sample host values (ᾱ, κ) travel to
// the device as a small tensor written just before the kernel, on the same queue.
#include <cmath>
#include <sstream>
#include <stdexcept>
#include "kintsugi/backend.h"
#include "kintsugi/gsure.h"
#include "registry.h"

namespace ks {
namespace {

std::string num(double x) {
  std::ostringstream s;
  s.precision(6);
  s << x;
  return s.str();
}

// A per-coordinate input (v or c): one value per element of the batch, or one sample's worth shared by all.
int64_t coordinate_stride(Check& c, const Tensor& t, const Tensor& ref, const char* arg) {
  c.in(t, arg);
  const int64_t per = ref.numel() / ref.shape[0];
  if (t.numel() == ref.numel()) return per;
  if (t.numel() == per) return 0;
  c.fail(std::string(arg) + " must have the shape of " + shape_string(ref.shape) + " or hold one sample's " +
         std::to_string(per) + " values, got shape " + shape_string(t.shape));
}

Tensor host_values(const Device& device, std::vector<float> values) {
  Tensor t(device, {static_cast<int64_t>(values.size())});
  write_host(t, std::move(values));
  return t;
}

}  // namespace

KS_OP(kSvdNoise, "svd_noise", cpu::svd_noise, KS_CUDA_FN(svd_noise));
void svd_noise(const Tensor& ybar, const Tensor& v, const std::vector<double>& alpha_bar, double v_max, RngKey key,
               const Tensor& out) {
  Check c("svd_noise");
  c.in(ybar, "ybar");
  c.out(out, "out");
  c.shape(out, ybar.shape, "out");
  const int64_t stride = coordinate_stride(c, v, ybar, "variance");
  const int64_t n = ybar.shape[0], per = ybar.numel() / n;
  if (static_cast<int64_t>(alpha_bar.size()) != n)
    c.fail("alphaBar must hold one value per sample (" + std::to_string(n) + "), got " +
           std::to_string(alpha_bar.size()));
  if (!(v_max >= 0 && std::isfinite(v_max))) c.fail("vMax must be a finite number >= 0, got " + num(v_max));
  std::vector<float> coef(3 * n);
  for (int64_t b = 0; b < n; ++b) {
    const double ab = alpha_bar[b];
    if (!(ab > 0 && ab <= 1)) c.fail("alphaBar[" + std::to_string(b) + "] must be in (0, 1], got " + num(ab));
    // The largest v gives the smallest D: D_min = (1 − ᾱ) − ᾱ vMax.
    if ((1 - ab) - ab * v_max < 0)
      c.fail("the added noise variance D = (1 - alphaBar) - alphaBar * v is negative for sample " + std::to_string(b) +
             " (alphaBar " + num(ab) + ", vMax " + num(v_max) + ", D " + num((1 - ab) - ab * v_max) +
             "): the measurement already holds more noise than step t allows. Choose the schedule's beta1 >= vMax / (1 "
             "+ vMax) = " +
             num(v_max / (1 + v_max)) +
             " (beta1 = sigma0^2 for masks, as the official configurations do), or restrict t to steps with alphaBar "
             "<= 1 / (1 + vMax) = " +
             num(1 / (1 + v_max)));
    coef[3 * b] = static_cast<float>(std::sqrt(ab));
    coef[3 * b + 1] = static_cast<float>(ab);
    coef[3 * b + 2] = static_cast<float>(1 - ab);
  }
  const Tensor coefs = c.in(host_values(ybar.device(), std::move(coef)), "alphaBar");
  dispatch(kSvdNoise, c, static_cast<const float*>(ybar.data()), static_cast<const float*>(v.data()), stride,
           static_cast<const float*>(coefs.data()), n, per, key, out.data());
}

KS_OP(kGsureProbe, "gsure_probe", cpu::gsure_probe, KS_CUDA_FN(gsure_probe));
void gsure_probe(const Tensor& xt, int probes, float eps, RngKey probe_key, const Tensor& plus, const Tensor* minus) {
  Check c("gsure_probe");
  c.in(xt, "xt");
  if (probes < 1) c.fail("probes must be >= 1, got " + std::to_string(probes));
  if (!(eps > 0 && std::isfinite(eps))) c.fail("eps must be > 0, got " + num(eps));
  Shape shape = xt.shape;
  shape[0] *= probes;
  c.out(plus, "plus");
  c.shape(plus, shape, "plus");
  float* pm = nullptr;
  if (minus) {
    c.out(*minus, "minus");
    c.shape(*minus, shape, "minus");
    pm = minus->data();
  }
  const int64_t n = xt.shape[0], per = xt.numel() / n;
  dispatch(kGsureProbe, c, static_cast<const float*>(xt.data()), n, per, probes, eps, probe_key, plus.data(), pm);
}

KS_OP(kGsureTerms, "gsure_terms", cpu::gsure_terms, KS_CUDA_FN(gsure_terms));
void gsure_terms(const Tensor& h, const Tensor& plus, const Tensor* minus, const Tensor& ybar, const Tensor& weight,
                 const Tensor& v, const std::vector<double>& kappa, const GsureTermsOptions& o, const Tensor& parts,
                 const Tensor& grad_h, const Tensor& grad_plus, const Tensor* grad_minus) {
  Check c("gsure_terms");
  c.in(h, "h");
  const int64_t n = h.shape[0], per = h.numel() / n;
  if (o.probes < 1) c.fail("probes must be >= 1, got " + std::to_string(o.probes));
  if (!(o.eps > 0 && std::isfinite(o.eps))) c.fail("eps must be > 0, got " + num(o.eps));
  if (!std::isfinite(o.grad_scale)) c.fail("gradScale must be finite, got " + num(o.grad_scale));
  if ((minus == nullptr) != (grad_minus == nullptr))
    c.fail("minus and gradMinus come together (central differences) or not at all (forward)");
  Shape probe_shape = h.shape;
  probe_shape[0] *= o.probes;
  GsureTermsArgs a;
  auto input = [&](const Tensor& t, const Shape& shape, const char* arg) {
    c.in(t, arg);
    c.shape(t, shape, arg);
    return t.data();
  };
  auto output = [&](const Tensor& t, const Shape& shape, const char* arg) {
    c.out(t, arg);
    c.shape(t, shape, arg);
    return t.data();
  };
  a.h = h.data();
  a.plus = input(plus, probe_shape, "plus");
  if (minus) a.minus = input(*minus, probe_shape, "minus");
  a.ybar = input(ybar, h.shape, "ybar");
  const int64_t sc = coordinate_stride(c, weight, h, "weight"), sv = coordinate_stride(c, v, h, "variance");
  if (sc != sv)
    c.fail("weight and variance must both be per sample or both shared, got shapes " + shape_string(weight.shape) +
           " and " + shape_string(v.shape));
  a.c = weight.data();
  a.v = v.data();
  a.cv_stride = sc;
  if (static_cast<int64_t>(kappa.size()) != n)
    c.fail("kappa must hold one value per sample (" + std::to_string(n) + "), got " + std::to_string(kappa.size()));
  std::vector<float> k(n);
  for (int64_t b = 0; b < n; ++b) {
    if (!std::isfinite(kappa[b])) c.fail("kappa[" + std::to_string(b) + "] must be finite, got " + num(kappa[b]));
    k[b] = static_cast<float>(kappa[b]);
  }
  const Tensor kt = c.in(host_values(h.device(), std::move(k)), "kappa");
  a.kappa = kt.data();
  a.n = n;
  a.per_sample = per;
  a.probes = o.probes;
  a.eps = o.eps;
  a.grad_scale = o.grad_scale;
  a.probe_key = o.probe_key;
  a.parts = output(parts, {n, 2}, "parts");
  a.grad_h = output(grad_h, h.shape, "gradH");
  a.grad_plus = output(grad_plus, probe_shape, "gradPlus");
  if (grad_minus) a.grad_minus = output(*grad_minus, probe_shape, "gradMinus");
  dispatch(kGsureTerms, c, a);
}

}  // namespace ks
