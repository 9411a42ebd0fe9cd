// The network ops on a CUDA device: declared with their CPU twins in kintsugi/nn_backend.h, the
// interface native/core dispatches through. Kept so the kernels' files include one local name.
#pragma once
#include "kintsugi/nn_backend.h"

namespace ks::cuda {
// The last pass of groupnorm_backward and groupnorm_silu_backward (groupnorm.cu): from part = [sb; sg]
// ([2, n, c], double), ggamma[ch] += sum over nb of sg[nb, ch] and gbeta[ch] += sum over nb of sb[nb, ch],
// nb in increasing order.
void groupnorm_fold_param_grads(const double* part, int64_t n, int64_t c, float* ggamma, float* gbeta);

// Issue #13's folds into groupnorm_silu_backward's apply pass (the pass that writes dL/dx), each off when
// null; all null is groupnorm_silu_backward itself, bit for bit.
//   addend        dL/dx = addend + (the GroupNorm+SiLU gradient): the graph's gradient add (add_inplace)
//                 read in the same pass; laid out as the output (below). May alias gx (gx += ...).
//   gx2, c1       the split: gx gets channels [0, c1) as [n, c1, hw], gx2 channels [c1, c) as [n, c - c1,
//                 hw] (split_channels of the concat's gradient). With an addend, addend2 holds its
//                 channels [c1, c) likewise. gx, gx2 may not alias gy then.
//   x2            the split input: x holds channels [0, c1) as [n, c1, hw] and x2 channels [c1, c) (the
//                 decoder's concat read from its two halves, never written; groups may straddle c1).
//                 Same c1 as the output split; either split may be used alone. gy stays [n, c, hw].
//   channel_sums  [n, c] (overwritten): sum over hw of the written dL/dx, in channel_sums' order (bit
//                 for bit channel_sums of the output): the time projection's gradient.
//   bias_grad     [c] += sum over n of channel_sums (conv2d_bias_backward of the output, bit for bit): the
//                 bias gradient of the conv that produced x. With a split, bias_grad gets channels
//                 [0, c1) and bias_grad2 (if set) [c1, c): the two convs behind the concat.
struct GnSiluBackwardFolds {
  const float* addend = nullptr;
  const float* addend2 = nullptr;
  float* gx2 = nullptr;
  const float* x2 = nullptr;
  int64_t c1 = 0;
  float* channel_sums = nullptr;
  float* bias_grad = nullptr;
  float* bias_grad2 = nullptr;
};
void groupnorm_silu_backward_folded(const float* x, const float* gamma, const float* beta, const float* mean,
                                    const float* rstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    const GroupNormShape& s, const GnSiluBackwardFolds& f);
}  // namespace ks::cuda
