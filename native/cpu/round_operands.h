// The CPU reference's rounding mode (issue #13): a convolution with BF16 or TF32 operands computed as
// the tensor cores compute it, up to the order of the FP32 additions: the operands (x and w forward;
// w and gy for the data gradient; x and gy for the weight gradient) are rounded exactly as the GPU
// rounds them (kintsugi/precision.h) into copies, then the FP32 kernels run on the copies. The bias
// gradient uses the unrounded gy, as on the GPU. With precision fp32 these are the plain kernels.
#pragma once
#include <cstdint>
#include "kintsugi/nn_shapes.h"

namespace ks::cpu {

// out[i] = x[i] rounded to p (out may be x).
void round_operands(const float* x, float* out, int64_t n, Precision p);

void conv2d_forward_rounded(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// The same with the epilogue (kintsugi/nn_shapes.h ConvEpilogue) added in the output pass.
void conv2d_forward_rounded_fused(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                                  const ConvEpilogue<float>& e);
void conv2d_backward_rounded(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                             const Conv2dShape& s);

}  // namespace ks::cpu
