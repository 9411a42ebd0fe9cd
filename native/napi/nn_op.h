// The registry's generic entry point and its description (nn_op.cpp).
#pragma once
#include <napi.h>

namespace ks::napi {
void nn_op(const Napi::CallbackInfo& info);
Napi::Value supports_js(const Napi::CallbackInfo& info);
Napi::Value ops_js(const Napi::CallbackInfo& info);
}  // namespace ks::napi
