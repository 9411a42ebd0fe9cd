// The bootstrap ops for JavaScript (kintsugi/bootstrap.h); lib/bootstrap/views.ts is the typed wrapper.
#pragma once
#include <napi.h>

namespace ks::napi {
void define_bootstrap(Napi::Env env, Napi::Object exports);
}  // namespace ks::napi
