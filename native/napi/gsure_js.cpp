// Glue for the GSURE ops (kintsugi/gsure.h); lib/gsure/kernels.ts is the typed wrapper.
#include "gsure_js.h"

#include <cmath>
#include <stdexcept>
#include "convert.h"
#include "kintsugi/gsure.h"
#include "tensor_wrap.h"

namespace ks::napi {
namespace {

using Info = const Napi::CallbackInfo&;

// One number per sample: an array of numbers or a Float64Array / Float32Array.
std::vector<double> numbers_arg(const Napi::Value& v, const char* what) {
  std::vector<double> out;
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    if (t.TypedArrayType() == napi_float64_array) {
      auto a = v.As<Napi::Float64Array>();
      out.assign(a.Data(), a.Data() + a.ElementLength());
      return out;
    }
    if (t.TypedArrayType() == napi_float32_array) {
      auto a = v.As<Napi::Float32Array>();
      out.assign(a.Data(), a.Data() + a.ElementLength());
      return out;
    }
  } else if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber())
        throw std::invalid_argument(std::string(what) + ": element " + std::to_string(i) + " is not a number");
      out.push_back(e.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
  throw std::invalid_argument(std::string(what) + ": expected an array of numbers or a Float64Array");
}

const Tensor* optional_tensor(const Napi::Value& v, const char* what) {
  return v.IsNull() || v.IsUndefined() ? nullptr : &TensorWrap::unwrap(v, what);
}

int int_arg(const Napi::Value& v, const char* what) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d == std::floor(d) && d >= -2147483648.0 && d <= 2147483647.0))
    throw std::invalid_argument(std::string(what) + ": expected an integer, got " + v.ToString().Utf8Value());
  return static_cast<int>(d);
}

// svdNoise(ybar, v, alphaBar, vMax, seed, offset, stream, out)
void svd_noise_js(Info info) {
  guarded(info.Env(), [&] {
    if (!info[3].IsNumber()) throw std::invalid_argument("vMax: expected a number");
    svd_noise(TensorWrap::unwrap(info[0], "ybar"), TensorWrap::unwrap(info[1], "v"), numbers_arg(info[2], "alphaBar"),
              info[3].As<Napi::Number>().DoubleValue(), rng_arg(info, 4), TensorWrap::unwrap(info[7], "out"));
  });
}

// gsureProbe(xt, probes, eps, seed, offset, stream, plus, minus | null)
void gsure_probe_js(Info info) {
  guarded(info.Env(), [&] {
    gsure_probe(TensorWrap::unwrap(info[0], "xt"), int_arg(info[1], "probes"), float_arg(info[2], "eps"),
                rng_arg(info, 3), TensorWrap::unwrap(info[6], "plus"), optional_tensor(info[7], "minus"));
  });
}

// gsureTerms(h, plus, minus | null, ybar, c, v, kappa, {probes, eps, gradScale, seed, offset, stream},
//            parts, gradH, gradPlus, gradMinus | null)
void gsure_terms_js(Info info) {
  guarded(info.Env(), [&] {
    if (!info[7].IsObject()) throw std::invalid_argument("gsureTerms: expected an options object");
    auto o = info[7].As<Napi::Object>();
    GsureTermsOptions opt;
    opt.probes = int_arg(o.Get("probes"), "probes");
    opt.eps = float_arg(o.Get("eps"), "eps");
    opt.grad_scale = float_arg(o.Get("gradScale"), "gradScale");
    opt.probe_key =
        RngKey{u64_arg(o.Get("seed"), "seed"), u64_arg(o.Get("offset"), "offset"), u64_arg(o.Get("stream"), "stream")};
    gsure_terms(TensorWrap::unwrap(info[0], "h"), TensorWrap::unwrap(info[1], "plus"),
                optional_tensor(info[2], "minus"), TensorWrap::unwrap(info[3], "ybar"),
                TensorWrap::unwrap(info[4], "c"), TensorWrap::unwrap(info[5], "v"), numbers_arg(info[6], "kappa"), opt,
                TensorWrap::unwrap(info[8], "parts"), TensorWrap::unwrap(info[9], "gradH"),
                TensorWrap::unwrap(info[10], "gradPlus"), optional_tensor(info[11], "gradMinus"));
  });
}

}  // namespace

void define_gsure(Napi::Env env, Napi::Object exports) {
  exports.Set("svdNoise", Napi::Function::New<svd_noise_js>(env, "svdNoise"));
  exports.Set("gsureProbe", Napi::Function::New<gsure_probe_js>(env, "gsureProbe"));
  exports.Set("gsureTerms", Napi::Function::New<gsure_terms_js>(env, "gsureTerms"));
}

}  // namespace ks::napi
