// The tensor ops of kintsugi/ops.h: one registry row each (core/registry.h), their checks, and the host
// transfers (which are not ops of a backend: they move data between the host and a device).
#include "kintsugi/ops.h"

#include <array>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include "kintsugi/backend.h"
#include "kintsugi/queue.h"
#include "registry.h"

namespace ks {
namespace {

// Host-side staging shared by the two halves of a cross-device transfer.
struct Handoff {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::optional<std::string> error;
  std::vector<float> data;

  void post(const std::string* err) {
    std::lock_guard<std::mutex> lock(mu);
    if (err) error = *err;
    ready = true;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return ready; });
  }
};

void read_into(const Tensor& t, float* dst) {
  if (t.device().is_cuda()) {
#if KS_WITH_CUDA
    cuda::download(dst, t.data(), t.bytes());
#endif
  } else {
    std::memcpy(dst, t.data(), t.bytes());
  }
}

void write_from(const Tensor& t, const float* src) {
  if (t.device().is_cuda()) {
#if KS_WITH_CUDA
    cuda::upload(t.data(), src, t.bytes());
#endif
  } else {
    std::memcpy(t.data(), src, t.bytes());
  }
}

}  // namespace

KS_OP(kFill, "fill", cpu::fill, KS_CUDA_FN(fill));
void fill(const Tensor& out, float value) {
  Check c("fill");
  c.out(out, "out");
  dispatch(kFill, c, out.data(), out.numel(), value);
}

KS_OP(kRandn, "randn", cpu::randn, KS_CUDA_FN(randn));
void randn(const Tensor& out, RngKey key) {
  Check c("randn");
  c.out(out, "out");
  dispatch(kRandn, c, out.data(), out.numel(), key);
}

KS_OP(kUniform, "uniform", cpu::uniform, KS_CUDA_FN(uniform));
void uniform(const Tensor& out, float low, float high, RngKey key) {
  Check c("uniform");
  c.out(out, "out");
  if (!(low < high))
    c.fail("low must be less than high, got low=" + std::to_string(low) + " high=" + std::to_string(high));
  dispatch(kUniform, c, out.data(), out.numel(), low, high, key);
}

KS_OP(kRandomBits, "random_bits", cpu::random_bits, KS_CUDA_FN(random_bits));
void random_bits(const Tensor& out, RngKey key) {
  Check c("random_bits");
  c.out(out, "out");
  dispatch(kRandomBits, c, reinterpret_cast<uint32_t*>(out.data()), out.numel(), key);
}

KS_OP(kCopy, "copy", cpu::copy, KS_CUDA_FN(copy));
void copy(const Tensor& src, const Tensor& dst) {
  Check c("copy");
  c.alive(src, "src");
  c.alive(dst, "dst");
  c.same_shape(src, "src", dst, "dst");
  if (src.device() == dst.device()) {
    c.in(src, "src");
    c.out(dst, "dst");
    dispatch(kCopy, c, static_cast<const float*>(src.data()), dst.data(), src.numel());
    return;
  }
  // Across devices: the source is read in its queue's order into host staging, and the destination
  // is written in its own queue's order, so neither side races with work queued before or after.
  auto handoff = std::make_shared<Handoff>();
  Task read;
  read.reads = {src.storage};
  read.run = [handoff, src] {
    handoff->data.resize(static_cast<size_t>(src.numel()));
    read_into(src, handoff->data.data());
  };
  read.done = [handoff](const std::string* err) { handoff->post(err); };
  Task write;
  write.writes = {dst.storage};
  write.run = [handoff, dst] {
    handoff->wait();
    if (handoff->error) throw std::runtime_error(*handoff->error);
    write_from(dst, handoff->data.data());
    handoff->data = {};
  };
  // The read is submitted first: every wait points at a task submitted earlier, so no cycle of
  // waiting queues can form.
  submit(src.device(), std::move(read));
  submit(dst.device(), std::move(write));
}

namespace {

// out = f(a, b) elementwise, every tensor of one shape on one device.
template <class Fn>
void binary(const Op<Fn>& op, const Tensor& a, const Tensor& b, const Tensor& out) {
  Check c(op.name);
  c.in(a, "a");
  c.in(b, "b");
  c.out(out, "out");
  c.same_shape(a, "a", b, "b");
  c.same_shape(a, "a", out, "out");
  dispatch(op, c, static_cast<const float*>(a.data()), static_cast<const float*>(b.data()), out.data(), a.numel());
}

}  // namespace

KS_OP(kAdd, "add", cpu::add, KS_CUDA_FN(add));
void add(const Tensor& a, const Tensor& b, const Tensor& out) { binary(kAdd, a, b, out); }

KS_OP(kMul, "mul", cpu::mul, KS_CUDA_FN(mul));
void mul(const Tensor& a, const Tensor& b, const Tensor& out) { binary(kMul, a, b, out); }

KS_OP(kScale, "scale", cpu::scale, KS_CUDA_FN(scale));
void scale(const Tensor& a, float s, const Tensor& out) {
  Check c("scale");
  c.in(a, "a");
  c.out(out, "out");
  c.same_shape(a, "a", out, "out");
  dispatch(kScale, c, static_cast<const float*>(a.data()), s, out.data(), a.numel());
}

namespace {

// A reduction of every element of a into the one element of out.
template <class Fn>
void reduce(const Op<Fn>& op, const Tensor& a, const Tensor& out) {
  Check c(op.name);
  c.in(a, "a");
  c.out(out, "out");
  c.one_element(out, "out");
  dispatch(op, c, static_cast<const float*>(a.data()), a.numel(), out.data());
}

}  // namespace

KS_OP(kSum, "sum", cpu::sum, KS_CUDA_FN(sum));
void sum(const Tensor& a, const Tensor& out) { reduce(kSum, a, out); }

KS_OP(kSumSquares, "sum_squares", cpu::sum_squares, KS_CUDA_FN(sum_squares));
void sum_squares(const Tensor& a, const Tensor& out) { reduce(kSumSquares, a, out); }

KS_OP(kAdamW, "adamw", cpu::adamw, KS_CUDA_FN(adamw));
void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v, const Tensor& sumsq,
           const AdamWConfig& cfg) {
  Check c("adamw");
  c.out(params, "params");
  c.in(grads, "grads");
  c.out(m, "m");
  c.out(v, "v");
  c.in(sumsq, "sumsq");
  for (auto [t, name] : {std::pair{&grads, "grads"}, {&m, "m"}, {&v, "v"}}) c.same_shape(params, "params", *t, name);
  c.one_element(sumsq, "sumsq");
  if (!(cfg.lr >= 0) || !(cfg.beta1 >= 0 && cfg.beta1 < 1) || !(cfg.beta2 >= 0 && cfg.beta2 < 1) || !(cfg.eps > 0) ||
      !(cfg.weight_decay >= 0) || cfg.step < 1 || !(cfg.max_norm >= 0))
    c.fail("need lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weightDecay >= 0, step >= 1, maxNorm >= 0");
  dispatch(kAdamW, c, params.data(), static_cast<const float*>(grads.data()), m.data(), v.data(),
           static_cast<const float*>(sumsq.data()), params.numel(), cfg);
}

KS_OP(kEma, "ema", cpu::ema_update, KS_CUDA_FN(ema_update));
void ema_update(const Tensor& ema, const Tensor& params, float decay) {
  Check c("ema");
  c.out(ema, "ema");
  c.in(params, "params");
  c.same_shape(ema, "ema", params, "params");
  if (!(decay >= 0 && decay <= 1)) c.fail("decay must be in [0, 1], got " + std::to_string(decay));
  dispatch(kEma, c, ema.data(), static_cast<const float*>(params.data()), ema.numel(), decay);
}

KS_OP(kCombine, "combine", cpu::combine, KS_CUDA_FN(combine));
void combine(const Tensor& out, const std::vector<std::pair<Tensor, Tensor>>& terms) {
  Check c("combine");
  c.out(out, "out");
  if (terms.empty() || terms.size() > 3) c.fail("expected 1 to 3 terms, got " + std::to_string(terms.size()));
  const int64_t n = out.shape[0], per_sample = out.numel() / n;
  std::array<const float*, 3> xs{}, cs{};
  for (size_t k = 0; k < terms.size(); ++k) {
    const auto& [x, coef] = terms[k];
    const std::string xn = "x" + std::to_string(k), cn = "coef" + std::to_string(k);
    c.in(x, xn.c_str());
    c.in(coef, cn.c_str());
    c.same_shape(out, "out", x, xn.c_str());
    if (coef.numel() != n)
      c.fail(cn + " must hold one value per sample (" + std::to_string(n) + "), got " + std::to_string(coef.numel()));
    xs[k] = x.data();
    cs[k] = coef.data();
  }
  float* po = out.data();
  const int count = static_cast<int>(terms.size());
  // The pointer arrays travel inside the task (the backend reads them on the worker).
  dispatch_call(kCombine, c, [=](auto* fn) { fn(po, xs.data(), cs.data(), count, n, per_sample); });
}

KS_OP(kClamp, "clamp", cpu::clamp, KS_CUDA_FN(clamp));
void clamp(const Tensor& a, float low, float high, const Tensor& out) {
  Check c("clamp");
  c.in(a, "a");
  c.out(out, "out");
  c.same_shape(a, "a", out, "out");
  if (!(low <= high)) c.fail("low must be <= high, got " + std::to_string(low) + " > " + std::to_string(high));
  dispatch(kClamp, c, static_cast<const float*>(a.data()), low, high, out.data(), a.numel());
}

namespace {

// Checks the image side [N, C, H, W] (H, W multiples of k) and the coefficient side, full or
// coefficient 0 only; returns the number of coefficient planes stored (k*k or 1).
int64_t block_average_coefs(const Check& c, const Tensor& image, const Tensor& coefs, int k, const char* image_name,
                            const char* coef_name, float scale) {
  if (k < 1 || k > 64) c.fail("k must be in [1, 64], got " + std::to_string(k));
  if (!std::isfinite(scale)) c.fail("scale must be finite, got " + std::to_string(scale));
  if (image.shape.size() != 4)
    c.fail(std::string(image_name) + " must be [N, C, H, W], got " + shape_string(image.shape));
  if (image.shape[2] % k || image.shape[3] % k)
    c.fail(std::string(image_name) + " height and width must be multiples of k=" + std::to_string(k) + ", got " +
           shape_string(image.shape));
  const Shape small{image.shape[0], image.shape[1], image.shape[2] / k, image.shape[3] / k};
  if (coefs.shape == image.shape) return int64_t(k) * k;
  if (coefs.shape == small) return 1;
  c.fail(std::string(coef_name) + " must be " + shape_string(image.shape) + " (every coefficient) or " +
         shape_string(small) + " (coefficient 0), got " + shape_string(coefs.shape));
}

}  // namespace

KS_OP(kBlockAverageVt, "block_average_vt", cpu::block_average_vt, KS_CUDA_FN(block_average_vt));
void block_average_vt(const Tensor& x, int k, float scale, const Tensor& out) {
  Check c("block_average_vt");
  c.in(x, "x");
  c.out(out, "out");
  const int64_t coefs = block_average_coefs(c, x, out, k, "x", "out", scale);
  c.distinct(out, "out", x, "x");
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2] / k, w = x.shape[3] / k;
  dispatch(kBlockAverageVt, c, static_cast<const float*>(x.data()), out.data(), planes, h, w, k, coefs, scale);
}

KS_OP(kBlockAverageV, "block_average_v", cpu::block_average_v, KS_CUDA_FN(block_average_v));
void block_average_v(const Tensor& coef, int k, float scale, const Tensor& out) {
  Check c("block_average_v");
  c.in(coef, "c");
  c.out(out, "out");
  const int64_t coefs = block_average_coefs(c, out, coef, k, "out", "c", scale);
  c.distinct(out, "out", coef, "c");
  const int64_t planes = out.shape[0] * out.shape[1], h = out.shape[2] / k, w = out.shape[3] / k;
  dispatch(kBlockAverageV, c, static_cast<const float*>(coef.data()), out.data(), planes, h, w, k, coefs, scale);
}

KS_OP(kFft2, "fft2", cpu::fft2, KS_CUDA_FN(fft2));
void fft2(const Tensor& x, bool inverse, const Tensor& out) {
  Check c("fft2");
  c.in(x, "x");
  c.out(out, "out");
  c.same_shape(x, "x", out, "out");
  if (x.shape.size() != 4 || x.shape[1] != 2)
    c.fail("x must be [N, 2, H, W] (channel 0 real, 1 imaginary), got " + shape_string(x.shape));
  for (int d : {2, 3}) {
    const int64_t s = x.shape[d];
    if (s > 2048 || (s & (s - 1)) != 0)
      c.fail(std::string("x ") + (d == 2 ? "height" : "width") + " must be a power of two up to 2048, got " +
             std::to_string(s) + " in " + shape_string(x.shape));
  }
  dispatch(kFft2, c, static_cast<const float*>(x.data()), out.data(), x.shape[0], x.shape[2], x.shape[3], inverse);
}

void write_host(const Tensor& dst, std::vector<float> data) {
  Check("write").alive(dst, "dst");
  if (static_cast<int64_t>(data.size()) != dst.numel())
    throw std::invalid_argument("write: data has " + std::to_string(data.size()) + " elements, shape " +
                                shape_string(dst.shape) + " needs " + std::to_string(dst.numel()));
  Task task;
  task.writes = {dst.storage};
  auto buffer = std::make_shared<std::vector<float>>(std::move(data));
  task.run = [dst, buffer] { write_from(dst, buffer->data()); };
  submit(dst.device(), std::move(task));
}

void read_host(const Tensor& src, std::function<void(std::vector<float>&&, const std::string*)> done) {
  Check("read").alive(src, "src");
  auto buffer = std::make_shared<std::vector<float>>();
  Task task;
  task.reads = {src.storage};
  task.run = [src, buffer] {
    buffer->resize(static_cast<size_t>(src.numel()));
    read_into(src, buffer->data());
  };
  task.done = [buffer, done](const std::string* err) { done(std::move(*buffer), err); };
  submit(src.device(), std::move(task));
}

void check_guard(const Tensor& t, std::function<void(bool, const std::string*)> done) {
  Check("check_guard").alive(t, "t");
  if (!t.storage->guarded()) throw std::invalid_argument("check_guard: the tensor was not created with guard bytes");
  auto intact = std::make_shared<bool>(false);
  Task task;
  task.run = [t, intact] {
    unsigned char guard[kGuardBytes];
    const auto* base = static_cast<const unsigned char*>(t.storage->data()) + t.storage->bytes();
    if (t.device().is_cuda()) {
#if KS_WITH_CUDA
      cuda::download(guard, base, kGuardBytes);
#endif
    } else {
      std::memcpy(guard, base, kGuardBytes);
    }
    bool ok = true;
    for (unsigned char g : guard) ok = ok && g == kGuardByte;
    *intact = ok;
  };
  task.done = [intact, done](const std::string* err) { done(*intact, err); };
  submit(t.device(), std::move(task));
}

void empty_cache(const Device& device, std::function<void(const std::string*)> done) {
  Task task;
  task.run = [device] { allocator_for(device).empty_cache(); };
  task.done = std::move(done);
  submit(device, std::move(task));
}

void fail_task(const Tensor& t, const std::string& message) {
  Check("fail_task").alive(t, "tensor");
  Task task;
  task.writes = {t.storage};
  task.run = [message] { throw std::runtime_error(message); };
  submit(t.device(), std::move(task));
}

void synchronize(const Device& device, std::function<void(const std::string*)> done) {
  Task task;
  if (device.is_cuda()) {
#if KS_WITH_CUDA
    task.run = [] { cuda::synchronize(); };
#endif
  }
  task.done = std::move(done);
  submit(device, std::move(task));
}

}  // namespace ks
