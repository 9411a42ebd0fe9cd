#pragma once
#include <napi.h>

namespace ks::napi {
Napi::Value reference_op(const Napi::CallbackInfo& info);
Napi::Value reference_unet(const Napi::CallbackInfo& info);
}  // namespace ks::napi
