// The network ops on a CUDA device: declared with their CPU twins in kintsugi/nn_backend.h, the
// interface native/core dispatches through. Kept so the kernels' files include one local name.
#pragma once
#include "kintsugi/nn_backend.h"
