#include "convert.h"

#include <cmath>
#include <stdexcept>
#include "kintsugi/allocator.h"

namespace ks::napi {

void throw_js(Napi::Env env, const std::exception& e) {
  if (dynamic_cast<const std::invalid_argument*>(&e)) throw Napi::TypeError::New(env, e.what());
  Napi::Error err = Napi::Error::New(env, e.what());
  if (dynamic_cast<const OutOfMemory*>(&e)) err.Set("code", Napi::String::New(env, "KINTSUGI_OUT_OF_MEMORY"));
  throw err;
}

Device device_arg(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw std::invalid_argument(std::string(what) + ": expected a device string such as \"cpu\" or \"cuda:0\"");
  return parse_device(v.As<Napi::String>().Utf8Value());
}

Shape shape_arg(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw std::invalid_argument(std::string(what) + ": expected an array of dimensions");
  auto arr = v.As<Napi::Array>();
  Shape shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 1 && d == std::floor(d) && d <= 9007199254740991.0))
      throw std::invalid_argument(std::string(what) + ": dimension " + std::to_string(i) +
                                  " must be a positive integer, got " + e.ToString().Utf8Value());
    shape.push_back(static_cast<int64_t>(d));
  }
  check_shape(shape, what);
  return shape;
}

float float_arg(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw std::invalid_argument(std::string(what) + ": expected a number");
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

uint64_t u64_arg(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw std::invalid_argument(std::string(what) + ": must fit in 64 unsigned bits");
    return x;
  }
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d == std::floor(d) && d <= 9007199254740991.0) return static_cast<uint64_t>(d);
  }
  throw std::invalid_argument(std::string(what) + ": expected a non-negative integer or BigInt");
}

RngKey rng_arg(const Napi::CallbackInfo& info, size_t first) {
  return RngKey{u64_arg(info[first], "seed"), u64_arg(info[first + 1], "offset"), u64_arg(info[first + 2], "stream")};
}

Napi::Value shape_value(Napi::Env env, const Shape& shape) {
  auto arr = Napi::Array::New(env, shape.size());
  for (uint32_t i = 0; i < shape.size(); ++i) arr.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return arr;
}

}  // namespace ks::napi
