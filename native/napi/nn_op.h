#pragma once
#include <napi.h>

namespace ks::napi {
void nn_op(const Napi::CallbackInfo& info);
}  // namespace ks::napi
