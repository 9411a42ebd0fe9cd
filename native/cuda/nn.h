// The network ops on a CUDA device: declared with their CPU twins in kintsugi/nn_backend.h, the
// interface native/core dispatches through. Kept so the kernels' files include one local name.
#pragma once
#include "kintsugi/nn_backend.h"

namespace ks::cuda {
// The last pass of groupnorm_backward and groupnorm_silu_backward (groupnorm.cu): from part = [sb; sg]
// ([2, n, c], double), ggamma[ch] += sum over nb of sg[nb, ch] and gbeta[ch] += sum over nb of sb[nb, ch],
// nb in increasing order.
void groupnorm_fold_param_grads(const double* part, int64_t n, int64_t c, float* ggamma, float* gbeta);
}  // namespace ks::cuda
