// Argument conversion and error mapping for the N-API functions: C++ errors become JS errors whose
// message names the argument (std::invalid_argument -> TypeError, OutOfMemory -> Error with code
// KINTSUGI_OUT_OF_MEMORY, anything else -> Error).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include "kintsugi/device.h"
#include "kintsugi/ops.h"
#include "kintsugi/tensor.h"
#include "kintsugi/unet.h"

namespace ks::napi {

[[noreturn]] void throw_js(Napi::Env env, const std::exception& e);

// Runs fn, converting C++ exceptions into JS exceptions.
template <class F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_js(env, e);
  }
}

Device device_arg(const Napi::Value& v, const char* what);
Shape shape_arg(const Napi::Value& v, const char* what);
float float_arg(const Napi::Value& v, const char* what);
uint64_t u64_arg(const Napi::Value& v, const char* what);      // a BigInt or a non-negative safe integer
RngKey rng_arg(const Napi::CallbackInfo& info, size_t first);  // seed, offset, stream at info[first..]
Napi::Value shape_value(Napi::Env env, const Shape& shape);
// A UNet configuration object with the camelCase fields of docs/unet.md, or a preset name.
UNetConfig config_arg(const Napi::Value& v);

}  // namespace ks::napi
