// nnOp(name, attrs, inputs, outputs): one network op (the UNet's building blocks) on the device of its
// tensors, queued like every other op. The golden tests run each op on the CPU (float, against the
// double reference) and on CUDA (against the CPU) through this one entry point.
#include "nn_op.h"

#include <functional>
#include <map>
#include <stdexcept>
#include "../cpu/unet.h"
#include "convert.h"
#include "kintsugi/queue.h"
#include "tensor_wrap.h"
#if KS_WITH_CUDA
#include "../cuda/nn.h"
#endif

namespace ks::napi {
namespace {

// The float ops of one backend, as a table of function pointers with the same signatures.
struct Backend {
  decltype(&cpu::conv2d_forward<float>) conv2d_forward;
  decltype(&cpu::conv2d_backward<float>) conv2d_backward;
  decltype(&cpu::groupnorm_forward<float>) groupnorm_forward;
  decltype(&cpu::groupnorm_backward<float>) groupnorm_backward;
  decltype(&cpu::silu_forward<float>) silu_forward;
  decltype(&cpu::silu_backward<float>) silu_backward;
  decltype(&cpu::linear_forward<float>) linear_forward;
  decltype(&cpu::linear_backward<float>) linear_backward;
  decltype(&cpu::time_embedding<float>) time_embedding;
  decltype(&cpu::attention_forward<float>) attention_forward;
  decltype(&cpu::attention_backward<float>) attention_backward;
  decltype(&cpu::upsample2_forward<float>) upsample2_forward;
  decltype(&cpu::upsample2_backward<float>) upsample2_backward;
};

const Backend kCpu{cpu::conv2d_forward<float>,    cpu::conv2d_backward<float>,   cpu::groupnorm_forward<float>,
                   cpu::groupnorm_backward<float>, cpu::silu_forward<float>,      cpu::silu_backward<float>,
                   cpu::linear_forward<float>,     cpu::linear_backward<float>,   cpu::time_embedding<float>,
                   cpu::attention_forward<float>,  cpu::attention_backward<float>, cpu::upsample2_forward<float>,
                   cpu::upsample2_backward<float>};
#if KS_WITH_CUDA
const Backend kCuda{cuda::conv2d_forward,    cuda::conv2d_backward,    cuda::groupnorm_forward, cuda::groupnorm_backward,
                    cuda::silu_forward,      cuda::silu_backward,      cuda::linear_forward,    cuda::linear_backward,
                    cuda::time_embedding,    cuda::attention_forward,  cuda::attention_backward, cuda::upsample2_forward,
                    cuda::upsample2_backward};
#endif

int64_t attr(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d == static_cast<double>(static_cast<int64_t>(d))))
    throw std::invalid_argument(std::string("nnOp: attribute ") + key + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}

struct Call {
  std::vector<Tensor> in, out;  // out entries may be empty (optional outputs such as gx)
  float* o(size_t i) const { return out[i].storage ? out[i].data() : nullptr; }
  const float* i(size_t k) const { return in[k].data(); }
};

void sizes(const Call& c, std::vector<int64_t> in, std::vector<int64_t> out, const std::string& op) {
  if (c.in.size() != in.size() || c.out.size() != out.size())
    throw std::invalid_argument("nnOp " + op + ": expected " + std::to_string(in.size()) + " inputs and " +
                                std::to_string(out.size()) + " outputs");
  for (size_t k = 0; k < in.size(); ++k)
    if (c.in[k].numel() != in[k])
      throw std::invalid_argument("nnOp " + op + ": input " + std::to_string(k) + " needs " + std::to_string(in[k]) +
                                  " elements, got " + std::to_string(c.in[k].numel()));
  for (size_t k = 0; k < out.size(); ++k)
    if (c.out[k].storage && c.out[k].numel() != out[k])
      throw std::invalid_argument("nnOp " + op + ": output " + std::to_string(k) + " needs " + std::to_string(out[k]) +
                                  " elements, got " + std::to_string(c.out[k].numel()));
}

// Validates on the JS thread; returns the work for the device thread.
std::function<void(const Backend&)> plan(const std::string& op, const Napi::Object& a, const Call& c) {
  if (op == "conv2d_forward" || op == "conv2d_backward") {
    const Conv2dShape s{attr(a, "n"), attr(a, "cin"), attr(a, "h"), attr(a, "w"), attr(a, "cout"),
                        static_cast<int>(attr(a, "k")), static_cast<int>(attr(a, "stride"))};
    if ((s.k != 1 && s.k != 3) || (s.stride != 1 && s.stride != 2) || s.n * s.cin * s.h * s.w * s.cout == 0)
      throw std::invalid_argument("nnOp conv2d: bad shape attributes");
    const int64_t nx = s.n * s.cin * s.h * s.w, nw = s.cout * s.cin * s.k * s.k, ny = s.n * s.cout * s.ho() * s.wo();
    if (op == "conv2d_forward") {
      sizes(c, {nx, nw, s.cout}, {ny}, op);
      return [c, s](const Backend& b) { b.conv2d_forward(c.i(0), c.i(1), c.i(2), c.o(0), s); };
    }
    sizes(c, {nx, nw, ny}, {nx, nw, s.cout}, op);
    return [c, s](const Backend& b) { b.conv2d_backward(c.i(0), c.i(1), c.i(2), c.o(0), c.o(1), c.o(2), s); };
  }
  if (op == "groupnorm_forward" || op == "groupnorm_backward") {
    const GroupNormShape s{attr(a, "n"), attr(a, "c"), attr(a, "hw"), static_cast<int>(attr(a, "groups"))};
    if (s.groups < 1 || s.c % s.groups || s.n * s.c * s.hw == 0) throw std::invalid_argument("nnOp groupnorm: bad shape attributes");
    const int64_t nx = s.n * s.c * s.hw, ng = s.n * s.groups;
    if (op == "groupnorm_forward") {
      sizes(c, {nx, s.c, s.c}, {nx, ng, ng}, op);
      return [c, s](const Backend& b) { b.groupnorm_forward(c.i(0), c.i(1), c.i(2), c.o(0), c.o(1), c.o(2), s); };
    }
    sizes(c, {nx, s.c, ng, ng, nx}, {nx, s.c, s.c}, op);
    return [c, s](const Backend& b) { b.groupnorm_backward(c.i(0), c.i(1), c.i(2), c.i(3), c.i(4), c.o(0), c.o(1), c.o(2), s); };
  }
  if (op == "silu_forward" || op == "silu_backward") {
    const int64_t n = attr(a, "n");
    if (op == "silu_forward") {
      sizes(c, {n}, {n}, op);
      return [c, n](const Backend& b) { b.silu_forward(c.i(0), c.o(0), n); };
    }
    sizes(c, {n, n}, {n}, op);
    return [c, n](const Backend& b) { b.silu_backward(c.i(0), c.i(1), c.o(0), n); };
  }
  if (op == "linear_forward" || op == "linear_backward") {
    const int64_t n = attr(a, "n"), in = attr(a, "in"), out = attr(a, "out");
    if (op == "linear_forward") {
      sizes(c, {n * in, out * in, out}, {n * out}, op);
      return [c, n, in, out](const Backend& b) { b.linear_forward(c.i(0), c.i(1), c.i(2), c.o(0), n, in, out); };
    }
    sizes(c, {n * in, out * in, n * out}, {n * in, out * in, out}, op);
    return [c, n, in, out](const Backend& b) { b.linear_backward(c.i(0), c.i(1), c.i(2), c.o(0), c.o(1), c.o(2), n, in, out); };
  }
  if (op == "time_embedding") {
    const int64_t n = attr(a, "n"), ch = attr(a, "c");
    sizes(c, {n}, {n * ch}, op);
    return [c, n, ch](const Backend& b) { b.time_embedding(c.i(0), c.o(0), n, ch); };
  }
  if (op == "attention_forward" || op == "attention_backward") {
    const int64_t n = attr(a, "n"), ch = attr(a, "c"), p = attr(a, "p");
    if (op == "attention_forward") {
      sizes(c, {n * 3 * ch * p}, {n * p * p, n * ch * p}, op);
      return [c, n, ch, p](const Backend& b) { b.attention_forward(c.i(0), c.o(0), c.o(1), n, ch, p); };
    }
    sizes(c, {n * 3 * ch * p, n * p * p, n * ch * p}, {n * 3 * ch * p}, op);
    return [c, n, ch, p](const Backend& b) { b.attention_backward(c.i(0), c.i(1), c.i(2), c.o(0), n, ch, p); };
  }
  if (op == "upsample2_forward" || op == "upsample2_backward") {
    const int64_t planes = attr(a, "planes"), h = attr(a, "h"), w = attr(a, "w");
    if (op == "upsample2_forward") {
      sizes(c, {planes * h * w}, {planes * h * w * 4}, op);
      return [c, planes, h, w](const Backend& b) { b.upsample2_forward(c.i(0), c.o(0), planes, h, w); };
    }
    sizes(c, {planes * h * w * 4}, {planes * h * w}, op);
    return [c, planes, h, w](const Backend& b) { b.upsample2_backward(c.i(0), c.o(0), planes, h, w); };
  }
  throw std::invalid_argument("nnOp: unknown op \"" + op + "\"");
}

std::vector<Tensor> tensors(const Napi::Value& v, const char* what, bool optional) {
  if (!v.IsArray()) throw std::invalid_argument(std::string("nnOp: ") + what + " must be an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<Tensor> out;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (optional && e.IsNull()) {
      out.emplace_back();
      continue;
    }
    out.push_back(TensorWrap::unwrap(e, what));
  }
  return out;
}

}  // namespace

void nn_op(const Napi::CallbackInfo& info) {
  guarded(info.Env(), [&] {
    if (!info[0].IsString() || !info[1].IsObject()) throw std::invalid_argument("nnOp(name, attrs, inputs, outputs)");
    Call call{tensors(info[2], "inputs", false), tensors(info[3], "outputs", true)};
    if (call.in.empty()) throw std::invalid_argument("nnOp: needs at least one input");
    const Device device = call.in[0].device();
    Task task;
    for (const Tensor& t : call.in) {
      if (t.device() != device) throw std::invalid_argument("nnOp: every tensor must be on " + to_string(device));
      task.reads.push_back(t.storage);
    }
    for (const Tensor& t : call.out) {
      if (!t.storage) continue;
      if (t.device() != device) throw std::invalid_argument("nnOp: every tensor must be on " + to_string(device));
      task.writes.push_back(t.storage);
    }
    auto work = plan(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Object>(), call);
    if (device.is_cuda()) {
#if KS_WITH_CUDA
      task.run = [work] { work(kCuda); };
#endif
    } else {
      task.run = [work] { work(kCpu); };
    }
    submit(device, std::move(task));
  });
}

}  // namespace ks::napi
