#include "kintsugi/ops.h"

#include <array>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include "kintsugi/backend.h"
#include "kintsugi/queue.h"

namespace ks {
namespace {

void require_tensor(const Tensor& t, const char* op, const char* arg) {
  if (!t.storage) throw std::invalid_argument(std::string(op) + ": " + arg + " is disposed");
}

void require_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  if (a.shape != b.shape)
    throw std::invalid_argument(std::string(op) + ": " + bn + " must have the shape of " + an + ", " +
                                shape_string(a.shape) + ", got " + shape_string(b.shape));
}

void require_same_device(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": " + bn + " must be on the device of " + an + ", " +
                                to_string(a.device()) + ", got " + to_string(b.device()));
}

// Runs the backend function of `device` on its worker thread.
template <class CpuFn, class CudaFn>
void run_on(const Device& device, std::vector<std::shared_ptr<Storage>> reads,
            std::vector<std::shared_ptr<Storage>> writes, CpuFn cpu_fn, CudaFn cuda_fn) {
  Task task;
  task.reads = std::move(reads);
  task.writes = std::move(writes);
  if (device.is_cuda()) {
#if KS_WITH_CUDA
    task.run = cuda_fn;
#else
    (void)cuda_fn;
    throw std::runtime_error("this binary has no CUDA backend");
#endif
  } else {
    task.run = cpu_fn;
  }
  submit(device, std::move(task));
}

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

void fill(const Tensor& out, float value) {
  require_tensor(out, "fill", "out");
  const int64_t n = out.numel();
  float* p = out.data();
  run_on(out.device(), {}, {out.storage}, [=] { cpu::fill(p, n, value); },
         [=] {
#if KS_WITH_CUDA
           cuda::fill(p, n, value);
#endif
         });
}

void randn(const Tensor& out, RngKey key) {
  require_tensor(out, "randn", "out");
  const int64_t n = out.numel();
  float* p = out.data();
  run_on(out.device(), {}, {out.storage}, [=] { cpu::randn(p, n, key); },
         [=] {
#if KS_WITH_CUDA
           cuda::randn(p, n, key);
#endif
         });
}

void uniform(const Tensor& out, float low, float high, RngKey key) {
  require_tensor(out, "uniform", "out");
  if (!(low < high))
    throw std::invalid_argument("uniform: low must be less than high, got low=" + std::to_string(low) +
                                " high=" + std::to_string(high));
  const int64_t n = out.numel();
  float* p = out.data();
  run_on(out.device(), {}, {out.storage}, [=] { cpu::uniform(p, n, low, high, key); },
         [=] {
#if KS_WITH_CUDA
           cuda::uniform(p, n, low, high, key);
#endif
         });
}

void random_bits(const Tensor& out, RngKey key) {
  require_tensor(out, "random_bits", "out");
  const int64_t n = out.numel();
  auto* p = reinterpret_cast<uint32_t*>(out.data());
  run_on(out.device(), {}, {out.storage}, [=] { cpu::random_bits(p, n, key); },
         [=] {
#if KS_WITH_CUDA
           cuda::random_bits(p, n, key);
#endif
         });
}

void copy(const Tensor& src, const Tensor& dst) {
  require_tensor(src, "copy", "src");
  require_tensor(dst, "copy", "dst");
  require_same_shape(src, dst, "copy", "src", "dst");
  const int64_t n = src.numel();
  if (src.device() == dst.device()) {
    const float* s = src.data();
    float* d = dst.data();
    run_on(src.device(), {src.storage}, {dst.storage}, [=] { cpu::copy(s, d, n); },
           [=] {
#if KS_WITH_CUDA
             cuda::copy(s, d, n);
#endif
           });
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

void add(const Tensor& a, const Tensor& b, const Tensor& out) {
  require_tensor(a, "add", "a");
  require_tensor(b, "add", "b");
  require_tensor(out, "add", "out");
  require_same_shape(a, b, "add", "a", "b");
  require_same_shape(a, out, "add", "a", "out");
  require_same_device(a, b, "add", "a", "b");
  require_same_device(a, out, "add", "a", "out");
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage, b.storage}, {out.storage}, [=] { cpu::add(pa, pb, po, n); },
         [=] {
#if KS_WITH_CUDA
           cuda::add(pa, pb, po, n);
#endif
         });
}

void scale(const Tensor& a, float s, const Tensor& out) {
  require_tensor(a, "scale", "a");
  require_tensor(out, "scale", "out");
  require_same_shape(a, out, "scale", "a", "out");
  require_same_device(a, out, "scale", "a", "out");
  const float* pa = a.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage}, {out.storage}, [=] { cpu::scale(pa, s, po, n); },
         [=] {
#if KS_WITH_CUDA
           cuda::scale(pa, s, po, n);
#endif
         });
}

void sum(const Tensor& a, const Tensor& out) {
  require_tensor(a, "sum", "a");
  require_tensor(out, "sum", "out");
  if (out.numel() != 1)
    throw std::invalid_argument("sum: out must have one element, got shape " + shape_string(out.shape));
  require_same_device(a, out, "sum", "a", "out");
  const float* pa = a.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage}, {out.storage}, [=] { cpu::sum(pa, n, po); },
         [=] {
#if KS_WITH_CUDA
           cuda::sum(pa, n, po);
#endif
         });
}

void sum_squares(const Tensor& a, const Tensor& out) {
  require_tensor(a, "sum_squares", "a");
  require_tensor(out, "sum_squares", "out");
  if (out.numel() != 1)
    throw std::invalid_argument("sum_squares: out must have one element, got shape " + shape_string(out.shape));
  require_same_device(a, out, "sum_squares", "a", "out");
  const float* pa = a.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage}, {out.storage}, [=] { cpu::sum_squares(pa, n, po); },
         [=] {
#if KS_WITH_CUDA
           cuda::sum_squares(pa, n, po);
#endif
         });
}

void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v, const Tensor& sumsq,
           const AdamWConfig& c) {
  require_tensor(params, "adamw", "params");
  for (auto [t, name] : {std::pair{&grads, "grads"}, {&m, "m"}, {&v, "v"}}) {
    require_tensor(*t, "adamw", name);
    require_same_shape(params, *t, "adamw", "params", name);
    require_same_device(params, *t, "adamw", "params", name);
  }
  require_tensor(sumsq, "adamw", "sumsq");
  if (sumsq.numel() != 1) throw std::invalid_argument("adamw: sumsq must have one element, got " + shape_string(sumsq.shape));
  require_same_device(params, sumsq, "adamw", "params", "sumsq");
  if (!(c.lr >= 0) || !(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1) || !(c.eps > 0) ||
      !(c.weight_decay >= 0) || c.step < 1 || !(c.max_norm >= 0))
    throw std::invalid_argument("adamw: need lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weightDecay >= 0, step >= 1, maxNorm >= 0");
  float *pp = params.data(), *pm = m.data(), *pv = v.data();
  const float *pg = grads.data(), *ps = sumsq.data();
  const int64_t n = params.numel();
  run_on(params.device(), {grads.storage, sumsq.storage}, {params.storage, m.storage, v.storage},
         [=] { cpu::adamw(pp, pg, pm, pv, ps, n, c); },
         [=] {
#if KS_WITH_CUDA
           cuda::adamw(pp, pg, pm, pv, ps, n, c);
#endif
         });
}

void ema_update(const Tensor& ema, const Tensor& params, float decay) {
  require_tensor(ema, "ema", "ema");
  require_tensor(params, "ema", "params");
  require_same_shape(ema, params, "ema", "ema", "params");
  require_same_device(ema, params, "ema", "ema", "params");
  if (!(decay >= 0 && decay <= 1)) throw std::invalid_argument("ema: decay must be in [0, 1], got " + std::to_string(decay));
  float* pe = ema.data();
  const float* pp = params.data();
  const int64_t n = ema.numel();
  run_on(ema.device(), {params.storage}, {ema.storage}, [=] { cpu::ema_update(pe, pp, n, decay); },
         [=] {
#if KS_WITH_CUDA
           cuda::ema_update(pe, pp, n, decay);
#endif
         });
}

void combine(const Tensor& out, const std::vector<std::pair<Tensor, Tensor>>& terms) {
  require_tensor(out, "combine", "out");
  if (terms.empty() || terms.size() > 3)
    throw std::invalid_argument("combine: expected 1 to 3 terms, got " + std::to_string(terms.size()));
  const int64_t n = out.shape[0], per_sample = out.numel() / n;
  Task task;
  task.writes = {out.storage};
  std::array<const float*, 3> xs{}, cs{};
  for (size_t k = 0; k < terms.size(); ++k) {
    const auto& [x, c] = terms[k];
    const std::string xn = "x" + std::to_string(k), cn = "coef" + std::to_string(k);
    require_tensor(x, "combine", xn.c_str());
    require_tensor(c, "combine", cn.c_str());
    require_same_shape(out, x, "combine", "out", xn.c_str());
    require_same_device(out, x, "combine", "out", xn.c_str());
    require_same_device(out, c, "combine", "out", cn.c_str());
    if (c.numel() != n)
      throw std::invalid_argument("combine: " + cn + " must hold one value per sample (" + std::to_string(n) + "), got " +
                                  std::to_string(c.numel()));
    task.reads.push_back(x.storage);
    task.reads.push_back(c.storage);
    xs[k] = x.data();
    cs[k] = c.data();
  }
  float* po = out.data();
  const int count = static_cast<int>(terms.size());
  if (out.device().is_cuda()) {
#if KS_WITH_CUDA
    task.run = [=] { cuda::combine(po, xs.data(), cs.data(), count, n, per_sample); };
#endif
  } else {
    task.run = [=] { cpu::combine(po, xs.data(), cs.data(), count, n, per_sample); };
  }
  submit(out.device(), std::move(task));
}

void clamp(const Tensor& a, float low, float high, const Tensor& out) {
  require_tensor(a, "clamp", "a");
  require_tensor(out, "clamp", "out");
  require_same_shape(a, out, "clamp", "a", "out");
  require_same_device(a, out, "clamp", "a", "out");
  if (!(low <= high)) throw std::invalid_argument("clamp: low must be <= high, got " + std::to_string(low) + " > " + std::to_string(high));
  const float* pa = a.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage}, {out.storage}, [=] { cpu::clamp(pa, low, high, po, n); },
         [=] {
#if KS_WITH_CUDA
           cuda::clamp(pa, low, high, po, n);
#endif
         });
}

void mul(const Tensor& a, const Tensor& b, const Tensor& out) {
  require_tensor(a, "mul", "a");
  require_tensor(b, "mul", "b");
  require_tensor(out, "mul", "out");
  require_same_shape(a, b, "mul", "a", "b");
  require_same_shape(a, out, "mul", "a", "out");
  require_same_device(a, b, "mul", "a", "b");
  require_same_device(a, out, "mul", "a", "out");
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  const int64_t n = a.numel();
  run_on(a.device(), {a.storage, b.storage}, {out.storage}, [=] { cpu::mul(pa, pb, po, n); },
         [=] {
#if KS_WITH_CUDA
           cuda::mul(pa, pb, po, n);
#endif
         });
}

namespace {

// Checks the image side [N, C, H, W] (H, W multiples of k) and the coefficient side, full or
// coefficient 0 only; returns the number of coefficient planes stored (k*k or 1).
int64_t block_average_coefs(const Tensor& image, const Tensor& coefs, int k, const char* op, const char* image_name,
                            const char* coef_name) {
  if (k < 1 || k > 64) throw std::invalid_argument(std::string(op) + ": k must be in [1, 64], got " + std::to_string(k));
  if (image.shape.size() != 4)
    throw std::invalid_argument(std::string(op) + ": " + image_name + " must be [N, C, H, W], got " + shape_string(image.shape));
  if (image.shape[2] % k || image.shape[3] % k)
    throw std::invalid_argument(std::string(op) + ": " + image_name + " height and width must be multiples of k=" +
                                std::to_string(k) + ", got " + shape_string(image.shape));
  require_same_device(image, coefs, op, image_name, coef_name);
  const Shape small{image.shape[0], image.shape[1], image.shape[2] / k, image.shape[3] / k};
  if (coefs.shape == image.shape) return int64_t(k) * k;
  if (coefs.shape == small) return 1;
  throw std::invalid_argument(std::string(op) + ": " + coef_name + " must be " + shape_string(image.shape) +
                              " (every coefficient) or " + shape_string(small) + " (coefficient 0), got " +
                              shape_string(coefs.shape));
}

void require_finite_scale(float scale, const char* op) {
  if (!std::isfinite(scale)) throw std::invalid_argument(std::string(op) + ": scale must be finite, got " + std::to_string(scale));
}

}  // namespace

void block_average_vt(const Tensor& x, int k, float scale, const Tensor& out) {
  require_tensor(x, "block_average_vt", "x");
  require_tensor(out, "block_average_vt", "out");
  require_finite_scale(scale, "block_average_vt");
  const int64_t coefs = block_average_coefs(x, out, k, "block_average_vt", "x", "out");
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2] / k, w = x.shape[3] / k;
  if (x.storage == out.storage) throw std::invalid_argument("block_average_vt: out must not alias x");
  const float* px = x.data();
  float* po = out.data();
  run_on(x.device(), {x.storage}, {out.storage}, [=] { cpu::block_average_vt(px, po, planes, h, w, k, coefs, scale); },
         [=] {
#if KS_WITH_CUDA
           cuda::block_average_vt(px, po, planes, h, w, k, coefs, scale);
#endif
         });
}

void block_average_v(const Tensor& c, int k, float scale, const Tensor& out) {
  require_tensor(c, "block_average_v", "c");
  require_tensor(out, "block_average_v", "out");
  require_finite_scale(scale, "block_average_v");
  const int64_t coefs = block_average_coefs(out, c, k, "block_average_v", "out", "c");
  const int64_t planes = out.shape[0] * out.shape[1], h = out.shape[2] / k, w = out.shape[3] / k;
  if (c.storage == out.storage) throw std::invalid_argument("block_average_v: out must not alias c");
  const float* pc = c.data();
  float* po = out.data();
  run_on(c.device(), {c.storage}, {out.storage}, [=] { cpu::block_average_v(pc, po, planes, h, w, k, coefs, scale); },
         [=] {
#if KS_WITH_CUDA
           cuda::block_average_v(pc, po, planes, h, w, k, coefs, scale);
#endif
         });
}

void fft2(const Tensor& x, bool inverse, const Tensor& out) {
  require_tensor(x, "fft2", "x");
  require_tensor(out, "fft2", "out");
  require_same_shape(x, out, "fft2", "x", "out");
  require_same_device(x, out, "fft2", "x", "out");
  if (x.shape.size() != 4 || x.shape[1] != 2)
    throw std::invalid_argument("fft2: x must be [N, 2, H, W] (channel 0 real, 1 imaginary), got " + shape_string(x.shape));
  for (int d : {2, 3}) {
    const int64_t s = x.shape[d];
    if (s > 2048 || (s & (s - 1)) != 0)
      throw std::invalid_argument(std::string("fft2: x ") + (d == 2 ? "height" : "width") +
                                  " must be a power of two up to 2048, got " + std::to_string(s) + " in " + shape_string(x.shape));
  }
  const int64_t n = x.shape[0], h = x.shape[2], w = x.shape[3];
  const float* px = x.data();
  float* po = out.data();
  run_on(x.device(), {x.storage}, {out.storage}, [=] { cpu::fft2(px, po, n, h, w, inverse); },
         [=] {
#if KS_WITH_CUDA
           cuda::fft2(px, po, n, h, w, inverse);
#endif
         });
}

void write_host(const Tensor& dst, std::vector<float> data) {
  require_tensor(dst, "write", "dst");
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
  require_tensor(src, "read", "src");
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
  require_tensor(t, "check_guard", "t");
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
