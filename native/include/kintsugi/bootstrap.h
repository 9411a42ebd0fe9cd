// The ops of bootstrapping diffusion (docs/bootstrap.md): the views of an image (r×r average pooling,
// nearest upsampling, the high-pass complement, patches) and the fused residual aggregation. Each
// validates its arguments (errors name the argument, the expected and the actual value) and queues the
// work on the tensors' device. Images are [n, c, h, w]; patches are [n · J, c, P, P] (patch_grid.h).
#pragma once
#include <cstdint>
#include "kintsugi/patch_grid.h"
#include "kintsugi/tensor.h"

namespace ks {

// out [n, c, h/r, w/r] = the mean of each r×r block of x [n, c, h, w] (A).
void avg_pool(const Tensor& x, int r, const Tensor& out);
// out [n, c, h·r, w·r]: each value of x [n, c, h, w] repeated over its r×r block (U = r² Aᵀ).
void upsample_nearest(const Tensor& x, int r, const Tensor& out);
// out = x − U A x (H): x with the mean of each r×r block removed.
void high_pass(const Tensor& x, int r, const Tensor& out);
// out [n · J, c (+ 2), size, size] = the patches P_j x at the grid offsets; with `positions`, two more
// channels hold each pixel's row and column in the image, mapped onto [-1, 1].
void patch_extract(const Tensor& x, int64_t size, int64_t stride, bool positions, const Tensor& out);
// out [n, c, h, w] = Σ_j P_jᵀ (W_j ⊙ patches_j) for patches [n · J, c, P, P] cut from out's shape.
void patch_overlap_add(const Tensor& patches, int64_t stride, PatchWindow window, const Tensor& out);
// out [n, c, h, w] = U f_lr + H Σ_j P_jᵀ (W_j ⊙ f_patch_j) (+ f0): the aggregate of the low-resolution
// view f_lr [n, c, h/r, w/r] and the patch view f_patch [n · J, c, P, P]; either view may be null
// (not both), and so may f0 [n, c, h, w].
void residual_aggregate(const Tensor* f_lr, int r, const Tensor* f_patch, int64_t stride, PatchWindow window,
                        const Tensor* f0, const Tensor& out);
// out [n, ca + cb, h, w] = a [n, ca, h, w] and b [n, cb, h, w] stacked along channels (the input of a
// residual denoiser that sees x_t and the aggregate).
void concat_channels(const Tensor& a, const Tensor& b, const Tensor& out);
// out[b] = x[b] − (1/n) Σ_b' x[b'] over the first dimension (the gradient of the batch-variance penalty
// of the residual denoiser). out may be x.
void batch_center(const Tensor& x, const Tensor& out);

}  // namespace ks
