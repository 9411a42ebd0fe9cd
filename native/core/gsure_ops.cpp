// Validation and dispatch of the GSURE ops (kintsugi/gsure.h). Per-sample host values (ᾱ, κ) travel to
// the device as a small tensor written just before the kernel, on the same queue.
#include <cmath>
#include <sstream>
#include <stdexcept>
#include "kintsugi/backend.h"
#include "kintsugi/gsure.h"
#include "kintsugi/queue.h"
#include "dispatch.h"

namespace ks {
namespace {

std::string num(double x) {
  std::ostringstream s;
  s.precision(6);
  s << x;
  return s.str();
}

void need(const Tensor& t, const char* op, const char* arg) {
  if (!t.storage) throw std::invalid_argument(std::string(op) + ": " + arg + " is disposed");
}

void need_shape(const Tensor& t, const Shape& shape, const char* op, const char* arg) {
  if (t.shape != shape)
    throw std::invalid_argument(std::string(op) + ": " + arg + " must have shape " + shape_string(shape) + ", got " +
                                shape_string(t.shape));
}

void need_device(const Tensor& t, const Tensor& ref, const char* op, const char* arg) {
  if (t.device() != ref.device())
    throw std::invalid_argument(std::string(op) + ": " + arg + " must be on " + to_string(ref.device()) + ", got " +
                                to_string(t.device()));
}

// A per-coordinate input (v or c): one value per element of the batch, or one sample's worth shared by all.
int64_t coordinate_stride(const Tensor& t, const Tensor& ref, const char* op, const char* arg) {
  need(t, op, arg);
  need_device(t, ref, op, arg);
  const int64_t per = ref.numel() / ref.shape[0];
  if (t.numel() == ref.numel()) return per;
  if (t.numel() == per) return 0;
  throw std::invalid_argument(std::string(op) + ": " + arg + " must have the shape of " + shape_string(ref.shape) +
                              " or hold one sample's " + std::to_string(per) + " values, got shape " + shape_string(t.shape));
}

Tensor host_values(const Device& device, std::vector<float> values) {
  Tensor t(device, {static_cast<int64_t>(values.size())});
  write_host(t, std::move(values));
  return t;
}


}  // namespace

void svd_noise(const Tensor& ybar, const Tensor& v, const std::vector<double>& alpha_bar, double v_max, RngKey key,
               const Tensor& out) {
  const char* op = "svd_noise";
  need(ybar, op, "ybar");
  need(out, op, "out");
  need_shape(out, ybar.shape, op, "out");
  need_device(out, ybar, op, "out");
  const int64_t stride = coordinate_stride(v, ybar, op, "variance");
  const int64_t n = ybar.shape[0], per = ybar.numel() / n;
  if (static_cast<int64_t>(alpha_bar.size()) != n)
    throw std::invalid_argument(std::string(op) + ": alphaBar must hold one value per sample (" + std::to_string(n) +
                                "), got " + std::to_string(alpha_bar.size()));
  if (!(v_max >= 0 && std::isfinite(v_max)))
    throw std::invalid_argument(std::string(op) + ": vMax must be a finite number >= 0, got " + num(v_max));
  std::vector<float> coef(3 * n);
  for (int64_t b = 0; b < n; ++b) {
    const double ab = alpha_bar[b];
    if (!(ab > 0 && ab <= 1))
      throw std::invalid_argument(std::string(op) + ": alphaBar[" + std::to_string(b) + "] must be in (0, 1], got " + num(ab));
    // The largest v gives the smallest D: D_min = (1 − ᾱ) − ᾱ vMax.
    if ((1 - ab) - ab * v_max < 0)
      throw std::invalid_argument(
          std::string(op) + ": the added noise variance D = (1 - alphaBar) - alphaBar * v is negative for sample " +
          std::to_string(b) + " (alphaBar " + num(ab) + ", vMax " + num(v_max) + ", D " + num((1 - ab) - ab * v_max) +
          "): the measurement already holds more noise than step t allows. Choose the schedule's beta1 >= vMax / (1 + vMax) = " +
          num(v_max / (1 + v_max)) + " (beta1 = sigma0^2 for masks, as the official configurations do), or restrict t to steps with alphaBar <= 1 / (1 + vMax) = " +
          num(1 / (1 + v_max)));
    coef[3 * b] = static_cast<float>(std::sqrt(ab));
    coef[3 * b + 1] = static_cast<float>(ab);
    coef[3 * b + 2] = static_cast<float>(1 - ab);
  }
  const Tensor c = host_values(ybar.device(), std::move(coef));
  const float *py = ybar.data(), *pv = v.data(), *pc = c.data();
  float* po = out.data();
  submit_backend(ybar.device(), {ybar.storage, v.storage, c.storage}, {out.storage},
            [=] { cpu::svd_noise(py, pv, stride, pc, n, per, key, po); },
            [=] {
#if KS_WITH_CUDA
              cuda::svd_noise(py, pv, stride, pc, n, per, key, po);
#endif
            });
}

void gsure_probe(const Tensor& xt, int probes, float eps, RngKey probe_key, const Tensor& plus, const Tensor* minus) {
  const char* op = "gsure_probe";
  need(xt, op, "xt");
  if (probes < 1) throw std::invalid_argument(std::string(op) + ": probes must be >= 1, got " + std::to_string(probes));
  if (!(eps > 0 && std::isfinite(eps))) throw std::invalid_argument(std::string(op) + ": eps must be > 0, got " + num(eps));
  Shape shape = xt.shape;
  shape[0] *= probes;
  need(plus, op, "plus");
  need_shape(plus, shape, op, "plus");
  need_device(plus, xt, op, "plus");
  std::vector<std::shared_ptr<Storage>> writes{plus.storage};
  float* pm = nullptr;
  if (minus) {
    need(*minus, op, "minus");
    need_shape(*minus, shape, op, "minus");
    need_device(*minus, xt, op, "minus");
    writes.push_back(minus->storage);
    pm = minus->data();
  }
  const int64_t n = xt.shape[0], per = xt.numel() / n;
  const float* px = xt.data();
  float* pp = plus.data();
  submit_backend(xt.device(), {xt.storage}, std::move(writes),
            [=] { cpu::gsure_probe(px, n, per, probes, eps, probe_key, pp, pm); },
            [=] {
#if KS_WITH_CUDA
              cuda::gsure_probe(px, n, per, probes, eps, probe_key, pp, pm);
#endif
            });
}

void gsure_terms(const Tensor& h, const Tensor& plus, const Tensor* minus, const Tensor& ybar, const Tensor& c,
                 const Tensor& v, const std::vector<double>& kappa, const GsureTermsOptions& o, const Tensor& parts,
                 const Tensor& grad_h, const Tensor& grad_plus, const Tensor* grad_minus) {
  const char* op = "gsure_terms";
  need(h, op, "h");
  const int64_t n = h.shape[0], per = h.numel() / n;
  if (o.probes < 1) throw std::invalid_argument(std::string(op) + ": probes must be >= 1, got " + std::to_string(o.probes));
  if (!(o.eps > 0 && std::isfinite(o.eps))) throw std::invalid_argument(std::string(op) + ": eps must be > 0, got " + num(o.eps));
  if (!std::isfinite(o.grad_scale)) throw std::invalid_argument(std::string(op) + ": gradScale must be finite, got " + num(o.grad_scale));
  if ((minus == nullptr) != (grad_minus == nullptr))
    throw std::invalid_argument(std::string(op) + ": minus and gradMinus come together (central differences) or not at all (forward)");
  Shape probe_shape = h.shape;
  probe_shape[0] *= o.probes;
  GsureTermsArgs a;
  std::vector<std::shared_ptr<Storage>> reads, writes;
  auto input = [&](const Tensor& t, const Shape& shape, const char* arg) {
    need(t, op, arg);
    need_shape(t, shape, op, arg);
    need_device(t, h, op, arg);
    reads.push_back(t.storage);
    return t.data();
  };
  auto output = [&](const Tensor& t, const Shape& shape, const char* arg) {
    need(t, op, arg);
    need_shape(t, shape, op, arg);
    need_device(t, h, op, arg);
    writes.push_back(t.storage);
    return t.data();
  };
  a.h = input(h, h.shape, "h");
  a.plus = input(plus, probe_shape, "plus");
  if (minus) a.minus = input(*minus, probe_shape, "minus");
  a.ybar = input(ybar, h.shape, "ybar");
  const int64_t sc = coordinate_stride(c, h, op, "weight"), sv = coordinate_stride(v, h, op, "variance");
  if (sc != sv)
    throw std::invalid_argument(std::string(op) + ": weight and variance must both be per sample or both shared, got shapes " +
                                shape_string(c.shape) + " and " + shape_string(v.shape));
  a.c = c.data();
  a.v = v.data();
  reads.push_back(c.storage);
  reads.push_back(v.storage);
  a.cv_stride = sc;
  if (static_cast<int64_t>(kappa.size()) != n)
    throw std::invalid_argument(std::string(op) + ": kappa must hold one value per sample (" + std::to_string(n) + "), got " +
                                std::to_string(kappa.size()));
  std::vector<float> k(n);
  for (int64_t b = 0; b < n; ++b) {
    if (!std::isfinite(kappa[b])) throw std::invalid_argument(std::string(op) + ": kappa[" + std::to_string(b) + "] must be finite, got " + num(kappa[b]));
    k[b] = static_cast<float>(kappa[b]);
  }
  const Tensor kt = host_values(h.device(), std::move(k));
  reads.push_back(kt.storage);
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
  submit_backend(h.device(), std::move(reads), std::move(writes), [a] { cpu::gsure_terms(a); },
            [a] {
#if KS_WITH_CUDA
              cuda::gsure_terms(a);
#endif
            });
}

}  // namespace ks
