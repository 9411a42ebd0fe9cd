// Convolution on tensor cores (tc_conv.cu): reached through conv2d_forward / conv2d_backward (nn.h)
// when the shape asks for BF16 or TF32 operands and the device has them (tensor_cores_available()).
#pragma once
#include <cstddef>
#include <cstdint>
#include "kintsugi/nn_shapes.h"

namespace ks::cuda {

// y = conv(x, w) + b, operands rounded to s.precision (bf16 or tf32), FP32 accumulation.
void tc_conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// gx = dL/dx (overwritten, skipped when null), gw += dL/dw; the bias gradient is conv2d_backward's.
void tc_conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, const Conv2dShape& s);
// Slices of the weight gradient's split-K (for tests: the fold's bound).
int64_t tc_conv2d_weight_slices(const Conv2dShape& s);
// The weight-gradient scratch cap in force (conv2d.cu; conv2d_weight_scratch_cap sets it).
size_t conv2d_weight_scratch_bytes();

}  // namespace ks::cuda
