// Validation and dispatch of the bootstrap ops (kintsugi/bootstrap.h): every shape relation is checked
// here, so the backends see only consistent geometry.
#include <stdexcept>
#include <string>
#include "kintsugi/backend.h"
#include "kintsugi/bootstrap.h"
#include "kintsugi/queue.h"
#include "dispatch.h"
#include "../cpu/unet.h"
#if KS_WITH_CUDA
#include "../cuda/nn.h"
#endif

namespace ks {
namespace {

using Storages = std::vector<std::shared_ptr<Storage>>;

[[noreturn]] void fail(const char* op, const std::string& message) {
  throw std::invalid_argument(std::string(op) + ": " + message);
}

void need(const Tensor& t, const char* op, const char* arg) {
  if (!t.storage) fail(op, std::string(arg) + " is disposed");
}

void need_image(const Tensor& t, const char* op, const char* arg) {
  need(t, op, arg);
  if (t.shape.size() != 4) fail(op, std::string(arg) + " must be [n, c, h, w], got shape " + shape_string(t.shape));
}

void need_shape(const Tensor& t, const Shape& shape, const char* op, const char* arg) {
  if (t.shape != shape) fail(op, std::string(arg) + " must have shape " + shape_string(shape) + ", got " + shape_string(t.shape));
}

void need_device(const Tensor& t, const Tensor& ref, const char* op, const char* arg) {
  if (t.device() != ref.device())
    fail(op, std::string(arg) + " must be on " + to_string(ref.device()) + ", got " + to_string(t.device()));
}

void need_factor(int r, const Tensor& x, const char* op, const char* arg) {
  if (r < 1) fail(op, "r must be a positive integer, got " + std::to_string(r));
  if (x.shape[2] % r || x.shape[3] % r)
    fail(op, std::string(arg) + "'s height and width must be multiples of r = " + std::to_string(r) + ", got shape " +
                 shape_string(x.shape));
}

// The grid of size×size patches with `stride` over images of `image`'s shape, checked to cover every
// pixel (stride <= size, and the last patch ends at the border).
PatchGrid grid_of(const Shape& image, int64_t size, int64_t stride, int window, const char* op) {
  PatchGrid g;
  g.n = image[0], g.c = image[1], g.h = image[2], g.w = image[3];
  g.size = size, g.stride = stride, g.window = window;
  if (size < 1 || size > g.h || size > g.w)
    fail(op, "patch size must be in [1, min(h, w) = " + std::to_string(std::min(g.h, g.w)) + "], got " + std::to_string(size));
  if (stride < 1 || stride > size)
    fail(op, "stride must be in [1, size = " + std::to_string(size) + "] (patches must cover every pixel), got " + std::to_string(stride));
  if ((g.h - size) % stride || (g.w - size) % stride)
    fail(op, "(h − size) and (w − size) must be multiples of the stride " + std::to_string(stride) +
                 " so the last patch ends at the border, got h = " + std::to_string(g.h) + ", w = " + std::to_string(g.w) +
                 ", size = " + std::to_string(size));
  if (window < 0 || window > 2) fail(op, "window must be uniform, triangle or hann, got " + std::to_string(window));
  return g;
}


// The CUDA half of a dispatch; in a CPU-only build submit_backend() refuses CUDA devices before it is reached.
#if KS_WITH_CUDA
#define KS_CUDA_CALL(call) [=] { cuda::call; }
#define KS_CUDA_BLOCK(fn) cuda::fn
#else
#define KS_CUDA_CALL(call) [] {}
#define KS_CUDA_BLOCK(fn) no_cuda
void no_cuda(const float*, float*, int64_t, int64_t, int64_t, int) {}
#endif

// The three block ops share their checks: x [n, c, h, w] -> out of x's shape, r times smaller or larger.
enum class Scale { down, same, up };

template <class Cpu, class Cuda>
void block_op(const char* op, const Tensor& x, int r, const Tensor& out, Scale scale, Cpu cpu_fn, Cuda cuda_fn) {
  need_image(x, op, "x");
  need(out, op, "out");
  need_device(out, x, op, "out");
  if (r < 1) fail(op, "r must be a positive integer, got " + std::to_string(r));
  if (scale != Scale::up) need_factor(r, x, op, "x");
  const Shape& s = x.shape;
  const Shape want = scale == Scale::up     ? Shape{s[0], s[1], s[2] * r, s[3] * r}
                     : scale == Scale::same ? s
                                            : Shape{s[0], s[1], s[2] / r, s[3] / r};
  need_shape(out, want, op, "out");
  const float* px = x.data();
  float* po = out.data();
  const int64_t planes = s[0] * s[1], h = s[2], w = s[3];
  submit_backend(x.device(), {x.storage}, {out.storage}, [=] { cpu_fn(px, po, planes, h, w, r); },
      [=] { cuda_fn(px, po, planes, h, w, r); });
}

}  // namespace

void avg_pool(const Tensor& x, int r, const Tensor& out) {
  block_op("avg_pool", x, r, out, Scale::down, cpu::avg_pool, KS_CUDA_BLOCK(avg_pool));
}

void upsample_nearest(const Tensor& x, int r, const Tensor& out) {
  block_op("upsample_nearest", x, r, out, Scale::up, cpu::upsample_nearest, KS_CUDA_BLOCK(upsample_nearest));
}

void high_pass(const Tensor& x, int r, const Tensor& out) {
  block_op("high_pass", x, r, out, Scale::same, cpu::high_pass, KS_CUDA_BLOCK(high_pass));
}

void patch_extract(const Tensor& x, int64_t size, int64_t stride, bool positions, const Tensor& out) {
  const char* op = "patch_extract";
  need_image(x, op, "x");
  need(out, op, "out");
  need_device(out, x, op, "out");
  const PatchGrid g = grid_of(x.shape, size, stride, 0, op);
  need_shape(out, {g.n * g.count(), g.c + (positions ? 2 : 0), size, size}, op, "out");
  const float* px = x.data();
  float* po = out.data();
  submit_backend(x.device(), {x.storage}, {out.storage}, [=] { cpu::patch_extract(px, po, g, positions); },
      KS_CUDA_CALL(patch_extract(px, po, g, positions)));
}

void patch_overlap_add(const Tensor& patches, int64_t stride, PatchWindow window, const Tensor& out) {
  const char* op = "patch_overlap_add";
  need_image(patches, op, "patches");
  need_image(out, op, "out");
  need_device(out, patches, op, "out");
  const PatchGrid g = grid_of(out.shape, patches.shape[2], stride, static_cast<int>(window), op);
  need_shape(patches, {g.n * g.count(), g.c, g.size, g.size}, op, "patches");
  if (patches.shape[3] != patches.shape[2]) fail(op, "patches must be square, got shape " + shape_string(patches.shape));
  const float* pp = patches.data();
  float* po = out.data();
  submit_backend(out.device(), {patches.storage}, {out.storage}, [=] { cpu::patch_overlap_add(pp, po, g); },
      KS_CUDA_CALL(patch_overlap_add(pp, po, g)));
}

void residual_aggregate(const Tensor* f_lr, int r, const Tensor* f_patch, int64_t stride, PatchWindow window,
                        const Tensor* f0, const Tensor& out) {
  const char* op = "residual_aggregate";
  need_image(out, op, "out");
  if (!f_lr && !f_patch) fail(op, "needs at least one view: fLr and fPatch are both null");
  const Shape& s = out.shape;
  Storages reads;
  PatchGrid g;
  g.n = s[0], g.c = s[1], g.h = s[2], g.w = s[3];
  if (f_lr) {
    need_image(*f_lr, op, "fLr");
    need_device(*f_lr, out, op, "fLr");
    need_factor(r, out, op, "out");
    need_shape(*f_lr, {s[0], s[1], s[2] / r, s[3] / r}, op, "fLr");
    reads.push_back(f_lr->storage);
  } else {
    r = 1;  // no low-resolution view: no high-pass, cells of one pixel
  }
  if (f_patch) {
    need_image(*f_patch, op, "fPatch");
    need_device(*f_patch, out, op, "fPatch");
    g = grid_of(s, f_patch->shape[2], stride, static_cast<int>(window), op);
    need_shape(*f_patch, {g.n * g.count(), g.c, g.size, g.size}, op, "fPatch");
    reads.push_back(f_patch->storage);
  }
  if (f0) {
    need(*f0, op, "f0");
    need_device(*f0, out, op, "f0");
    need_shape(*f0, s, op, "f0");
    // out holds the patch gather before f0 is added, so f0 must be a different buffer.
    if (f0->storage == out.storage) fail(op, "f0 must not be out (out is written before f0 is read)");
    reads.push_back(f0->storage);
  }
  const float* pl = f_lr ? f_lr->data() : nullptr;
  const float* pp = f_patch ? f_patch->data() : nullptr;
  const float* p0 = f0 ? f0->data() : nullptr;
  float* po = out.data();
  submit_backend(out.device(), std::move(reads), {out.storage}, [=] { cpu::residual_aggregate(pl, r, pp, p0, po, g); },
      KS_CUDA_CALL(residual_aggregate(pl, r, pp, p0, po, g)));
}

void concat_channels(const Tensor& a, const Tensor& b, const Tensor& out) {
  const char* op = "concat_channels";
  need_image(a, op, "a");
  need_image(b, op, "b");
  need(out, op, "out");
  need_device(b, a, op, "b");
  need_device(out, a, op, "out");
  if (b.shape[0] != a.shape[0] || b.shape[2] != a.shape[2] || b.shape[3] != a.shape[3])
    fail(op, "b must match a [n, ·, h, w] = " + shape_string(a.shape) + " except in channels, got " + shape_string(b.shape));
  need_shape(out, {a.shape[0], a.shape[1] + b.shape[1], a.shape[2], a.shape[3]}, op, "out");
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  const int64_t n = a.shape[0], ca = a.shape[1], cb = b.shape[1], hw = a.shape[2] * a.shape[3];
  submit_backend(a.device(), {a.storage, b.storage}, {out.storage}, [=] { cpu::CpuOps<float>::concat_channels(pa, pb, po, n, ca, cb, hw); },
      KS_CUDA_CALL(concat_channels(pa, pb, po, n, ca, cb, hw)));
}

void batch_center(const Tensor& x, const Tensor& out) {
  const char* op = "batch_center";
  need(x, op, "x");
  need(out, op, "out");
  need_device(out, x, op, "out");
  need_shape(out, x.shape, op, "out");
  const float* px = x.data();
  float* po = out.data();
  const int64_t n = x.shape[0], per = x.numel() / n;
  submit_backend(x.device(), {x.storage}, {out.storage}, [=] { cpu::batch_center(px, po, n, per); }, KS_CUDA_CALL(batch_center(px, po, n, per)));
}

}  // namespace ks
