// The GSURE ops for JavaScript (kintsugi/gsure.h): svdNoise, gsureProbe, gsureTerms.
#pragma once
#include <napi.h>

namespace ks::napi {
void define_gsure(Napi::Env env, Napi::Object exports);
}  // namespace ks::napi
