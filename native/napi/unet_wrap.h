// The UNet for JavaScript: layout and initialisation, and forward/backward queued on the device of
// its tensors. A forward returns a tape (the activations its backward needs); several tapes may be
// alive at once, so gradients of several forward/backward pairs accumulate into one step.
#pragma once
#include <napi.h>

namespace ks::napi {
void define_unet(Napi::Env env, Napi::Object exports);
}  // namespace ks::napi
