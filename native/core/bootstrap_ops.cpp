// The bootstrap ops (kintsugi/bootstrap.h): one registry row each and its checks; every shape relation
// is checked here, so the backends see only consistent geometry.
#include <stdexcept>
#include <string>
#include "kintsugi/backend.h"
#include "kintsugi/bootstrap.h"
#include "kintsugi/nn_backend.h"
#include "registry.h"

namespace ks {
namespace {

void need_factor(const Check& c, int r, const Tensor& x, const char* arg) {
  if (r < 1) c.fail("r must be a positive integer, got " + std::to_string(r));
  if (x.shape[2] % r || x.shape[3] % r)
    c.fail(std::string(arg) + "'s height and width must be multiples of r = " + std::to_string(r) + ", got shape " +
           shape_string(x.shape));
}

// The grid of size×size patches with `stride` over images of `image`'s shape, checked to cover every
// pixel (stride <= size, and the last patch ends at the border).
PatchGrid grid_of(const Check& c, const Shape& image, int64_t size, int64_t stride, int window) {
  PatchGrid g;
  g.n = image[0], g.c = image[1], g.h = image[2], g.w = image[3];
  g.size = size, g.stride = stride, g.window = window;
  if (size < 1 || size > g.h || size > g.w)
    c.fail("patch size must be in [1, min(h, w) = " + std::to_string(std::min(g.h, g.w)) + "], got " +
           std::to_string(size));
  if (stride < 1 || stride > size)
    c.fail("stride must be in [1, size = " + std::to_string(size) + "] (patches must cover every pixel), got " +
           std::to_string(stride));
  if ((g.h - size) % stride || (g.w - size) % stride)
    c.fail("(h − size) and (w − size) must be multiples of the stride " + std::to_string(stride) +
           " so the last patch ends at the border, got h = " + std::to_string(g.h) + ", w = " + std::to_string(g.w) +
           ", size = " + std::to_string(size));
  if (window < 0 || window > 2) c.fail("window must be uniform, triangle or hann, got " + std::to_string(window));
  return g;
}

// The three block ops share their checks: x [n, c, h, w] -> out of x's shape, r times smaller or larger.
enum class Scale { down, same, up };

using BlockFn = void(const float*, float*, int64_t, int64_t, int64_t, int);
void block_op(const Op<BlockFn>& op, const Tensor& x, int r, const Tensor& out, Scale scale) {
  Check c(op.name);
  c.in(x, "x");
  c.out(out, "out");
  c.image(x, "x");
  if (r < 1) c.fail("r must be a positive integer, got " + std::to_string(r));
  if (scale != Scale::up) need_factor(c, r, x, "x");
  const Shape& s = x.shape;
  const Shape want = scale == Scale::up     ? Shape{s[0], s[1], s[2] * r, s[3] * r}
                     : scale == Scale::same ? s
                                            : Shape{s[0], s[1], s[2] / r, s[3] / r};
  c.shape(out, want, "out");
  dispatch(op, c, static_cast<const float*>(x.data()), out.data(), s[0] * s[1], s[2], s[3], r);
}

}  // namespace

KS_OP(kAvgPool, "avg_pool", cpu::avg_pool, KS_CUDA_FN(avg_pool));
void avg_pool(const Tensor& x, int r, const Tensor& out) { block_op(kAvgPool, x, r, out, Scale::down); }

KS_OP(kUpsampleNearest, "upsample_nearest", cpu::upsample_nearest, KS_CUDA_FN(upsample_nearest));
void upsample_nearest(const Tensor& x, int r, const Tensor& out) { block_op(kUpsampleNearest, x, r, out, Scale::up); }

KS_OP(kHighPass, "high_pass", cpu::high_pass, KS_CUDA_FN(high_pass));
void high_pass(const Tensor& x, int r, const Tensor& out) { block_op(kHighPass, x, r, out, Scale::same); }

KS_OP(kPatchExtract, "patch_extract", cpu::patch_extract, KS_CUDA_FN(patch_extract));
void patch_extract(const Tensor& x, int64_t size, int64_t stride, bool positions, const Tensor& out) {
  Check c("patch_extract");
  c.in(x, "x");
  c.out(out, "out");
  c.image(x, "x");
  const PatchGrid g = grid_of(c, x.shape, size, stride, 0);
  c.shape(out, {g.n * g.count(), g.c + (positions ? 2 : 0), size, size}, "out");
  dispatch(kPatchExtract, c, static_cast<const float*>(x.data()), out.data(), g, positions);
}

KS_OP(kPatchOverlapAdd, "patch_overlap_add", cpu::patch_overlap_add, KS_CUDA_FN(patch_overlap_add));
void patch_overlap_add(const Tensor& patches, int64_t stride, PatchWindow window, const Tensor& out) {
  Check c("patch_overlap_add");
  c.in(patches, "patches");
  c.out(out, "out");
  c.image(patches, "patches");
  c.image(out, "out");
  const PatchGrid g = grid_of(c, out.shape, patches.shape[2], stride, static_cast<int>(window));
  c.shape(patches, {g.n * g.count(), g.c, g.size, g.size}, "patches");
  if (patches.shape[3] != patches.shape[2]) c.fail("patches must be square, got shape " + shape_string(patches.shape));
  dispatch(kPatchOverlapAdd, c, static_cast<const float*>(patches.data()), out.data(), g);
}

KS_OP(kResidualAggregate, "residual_aggregate", cpu::residual_aggregate, KS_CUDA_FN(residual_aggregate));
void residual_aggregate(const Tensor* f_lr, int r, const Tensor* f_patch, int64_t stride, PatchWindow window,
                        const Tensor* f0, const Tensor& out) {
  Check c("residual_aggregate");
  c.out(out, "out");
  c.image(out, "out");
  if (!f_lr && !f_patch) c.fail("needs at least one view: fLr and fPatch are both null");
  const Shape& s = out.shape;
  PatchGrid g;
  g.n = s[0], g.c = s[1], g.h = s[2], g.w = s[3];
  if (f_lr) {
    c.in(*f_lr, "fLr");
    c.image(*f_lr, "fLr");
    need_factor(c, r, out, "out");
    c.shape(*f_lr, {s[0], s[1], s[2] / r, s[3] / r}, "fLr");
  } else {
    r = 1;  // no low-resolution view: no high-pass, cells of one pixel
  }
  if (f_patch) {
    c.in(*f_patch, "fPatch");
    c.image(*f_patch, "fPatch");
    g = grid_of(c, s, f_patch->shape[2], stride, static_cast<int>(window));
    c.shape(*f_patch, {g.n * g.count(), g.c, g.size, g.size}, "fPatch");
  }
  if (f0) {
    c.in(*f0, "f0");
    c.shape(*f0, s, "f0");
    // out holds the patch gather before f0 is added, so f0 must be a different buffer.
    if (f0->storage == out.storage) c.fail("f0 must not be out (out is written before f0 is read)");
  }
  const float* pl = f_lr ? f_lr->data() : nullptr;
  const float* pp = f_patch ? f_patch->data() : nullptr;
  const float* p0 = f0 ? f0->data() : nullptr;
  dispatch(kResidualAggregate, c, pl, r, pp, p0, out.data(), g);
}

KS_OP(kConcatChannels, "concat_channels", cpu::concat_channels_f32, KS_CUDA_FN(concat_channels));
void concat_channels(const Tensor& a, const Tensor& b, const Tensor& out) {
  Check c("concat_channels");
  c.in(a, "a");
  c.in(b, "b");
  c.out(out, "out");
  c.image(a, "a");
  c.image(b, "b");
  if (b.shape[0] != a.shape[0] || b.shape[2] != a.shape[2] || b.shape[3] != a.shape[3])
    c.fail("b must match a [n, ·, h, w] = " + shape_string(a.shape) + " except in channels, got " +
           shape_string(b.shape));
  c.shape(out, {a.shape[0], a.shape[1] + b.shape[1], a.shape[2], a.shape[3]}, "out");
  dispatch(kConcatChannels, c, static_cast<const float*>(a.data()), static_cast<const float*>(b.data()), out.data(),
           a.shape[0], a.shape[1], b.shape[1], a.shape[2] * a.shape[3]);
}

KS_OP(kBatchCenter, "batch_center", cpu::batch_center, KS_CUDA_FN(batch_center));
void batch_center(const Tensor& x, const Tensor& out) {
  Check c("batch_center");
  c.in(x, "x");
  c.out(out, "out");
  c.shape(out, x.shape, "out");
  const int64_t n = x.shape[0];
  dispatch(kBatchCenter, c, static_cast<const float*>(x.data()), out.data(), n, x.numel() / n);
}

}  // namespace ks
