// The double-precision CPU reference (kintsugi/reference.h), exposed for gradient checks and for
// comparison with PyTorch fixtures: each call resolves to an object of Float64Arrays. Conversion only;
// the work and its checks are in native/cpu/reference.cpp. Not part of the public API.
#include "reference.h"

#include <stdexcept>
#include "bridge.h"
#include "convert.h"
#include "kintsugi/reference.h"

namespace ks::napi {
namespace {

// Every Float64Array property becomes a named array, every number a named number.
RefArgs ref_args(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw std::invalid_argument(std::string(what) + ": expected an arguments object");
  const auto o = v.As<Napi::Object>();
  RefArgs a;
  const Napi::Array keys = o.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    const std::string key = keys.Get(k).ToString().Utf8Value();
    const Napi::Value x = o.Get(key);
    if (x.IsNumber()) {
      a.numbers[key] = x.As<Napi::Number>().DoubleValue();
    } else if (x.IsTypedArray() && x.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
      auto f = x.As<Napi::Float64Array>();
      a.arrays[key] = std::vector<double>(f.Data(), f.Data() + f.ElementLength());
    } else {
      throw std::invalid_argument(key + ": expected a number or a Float64Array");
    }
  }
  return a;
}

// A promise settled with the result's arrays once the CPU queue has run the work.
template <class Start>
Napi::Value settle(Napi::Env env, Start start) {
  auto [promise, complete] = Bridge::of(env)->promise(env);
  start([complete = complete](RefArrays&& result, const std::string* error) {
    auto r = std::make_shared<RefArrays>(std::move(result));
    complete(error, [r](Napi::Env env) {
      auto o = Napi::Object::New(env);
      for (auto& [key, v] : *r) {
        auto arr = Napi::Float64Array::New(env, v.size());
        std::copy(v.begin(), v.end(), arr.Data());
        o.Set(key, arr);
      }
      return Napi::Value(o);
    });
  });
  return promise;
}

}  // namespace

Napi::Value reference_op(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    if (!info[0].IsString() || !info[1].IsObject())
      throw std::invalid_argument("referenceOp(name, args): bad arguments");
    const std::string op = info[0].As<Napi::String>().Utf8Value();
    const RefArgs args = ref_args(info[1], "referenceOp");
    return settle(env, [&](RefDone done) { ks::reference_op(op, args, std::move(done)); });
  });
}

Napi::Value reference_unet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const UNetConfig config = config_arg(info[0]);
    const RefArgs args = ref_args(info[1], "referenceUNet");
    return settle(env, [&](RefDone done) { ks::reference_unet(config, args, std::move(done)); });
  });
}

}  // namespace ks::napi
