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
  if (!v.IsString())
    throw std::invalid_argument(std::string(what) + ": expected a device string such as \"cpu\" or \"cuda:0\"");
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

namespace {
int int_field(const Napi::Object& o, const char* key, int fallback, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) throw std::invalid_argument(std::string("unet config: ") + key + " is required");
    return fallback;
  }
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d == std::floor(d) && std::fabs(d) < 1e9))
    throw std::invalid_argument(std::string("unet config: ") + key + " must be an integer, got " +
                                v.ToString().Utf8Value());
  return static_cast<int>(d);
}

std::vector<int> int_list(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw std::invalid_argument(std::string("unet config: ") + key + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d == std::floor(d) && std::fabs(d) < 1e9))
      throw std::invalid_argument(std::string("unet config: ") + key + "[" + std::to_string(i) +
                                  "] must be an integer");
    out.push_back(static_cast<int>(d));
  }
  return out;
}
}  // namespace

UNetConfig config_arg(const Napi::Value& v) {
  if (v.IsString()) return unet_preset(v.As<Napi::String>().Utf8Value());
  if (!v.IsObject()) throw std::invalid_argument("unet config: expected an object or a preset name");
  auto o = v.As<Napi::Object>();
  UNetConfig c;
  c.in_channels = int_field(o, "inChannels", 0, true);
  c.out_channels = int_field(o, "outChannels", c.in_channels, false);
  c.channels = int_field(o, "channels", 0, true);
  c.mult = int_list(o, "mult");
  c.res_blocks = int_field(o, "resBlocks", 0, true);
  c.attn_resolutions = o.Get("attnResolutions").IsUndefined() ? std::vector<int>{} : int_list(o, "attnResolutions");
  c.resolution = int_field(o, "resolution", 0, true);
  Napi::Value z = o.Get("zeroInit");
  c.zero_init = z.IsUndefined() ? true : z.ToBoolean().Value();
  // Not an architecture field: the operand precision of this instance's convolutions (lib/unet.ts).
  Napi::Value prec = o.Get("precision");
  if (!prec.IsUndefined()) {
    const std::string p = prec.IsString() ? prec.As<Napi::String>().Utf8Value() : "";
    if (p == "fp32")
      c.precision = Precision::fp32;
    else if (p == "bf16")
      c.precision = Precision::bf16;
    else if (p == "tf32")
      c.precision = Precision::tf32;
    else
      throw std::invalid_argument("unet config: precision must be \"fp32\", \"bf16\" or \"tf32\", got " +
                                  (prec.IsString() ? "\"" + p + "\"" : std::string("a non-string")));
  }
  c.validate();
  return c;
}

}  // namespace ks::napi
