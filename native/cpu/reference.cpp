// The double-precision reference (kintsugi/reference.h): each network op forward and backward, and the
// whole UNet, in double through the same templates as the float path. Gradient checks and the PyTorch
// fixtures compare with it.
#include <stdexcept>
#include "attention.h"
#include "conv2d.h"
#include "groupnorm.h"
#include "groupnorm_silu.h"
#include "kintsugi/reference.h"
#include "linear.h"
#include "silu.h"
#include "time_embedding.h"
#include "unet.h"
#include "upsample.h"

namespace ks::cpu {
namespace {

using Vec = std::vector<double>;
using Result = RefArrays;

Vec f64_arg(const RefArgs& a, const char* key, size_t expected) {
  const auto it = a.arrays.find(key);
  if (it == a.arrays.end()) throw std::invalid_argument(std::string(key) + ": expected a Float64Array");
  if (expected != SIZE_MAX && it->second.size() != expected)
    throw std::invalid_argument(std::string(key) + ": expected " + std::to_string(expected) + " values, got " +
                                std::to_string(it->second.size()));
  return it->second;
}

int64_t int_arg(const RefArgs& a, const char* key) {
  const auto it = a.numbers.find(key);
  if (it == a.numbers.end()) throw std::invalid_argument(std::string(key) + ": expected an integer");
  const double d = it->second;
  if (d < 0 || d != static_cast<int64_t>(d))
    throw std::invalid_argument(std::string(key) + ": expected a non-negative integer");
  return static_cast<int64_t>(d);
}

}  // namespace

// Checks the arguments on the calling thread and returns the work to run on the CPU queue.
std::function<Result()> reference_plan(const std::string& op, const RefArgs& a) {
  if (op == "conv2d") {
    Conv2dShape s{int_arg(a, "n"),
                  int_arg(a, "cin"),
                  int_arg(a, "h"),
                  int_arg(a, "w"),
                  int_arg(a, "cout"),
                  static_cast<int>(int_arg(a, "k")),
                  static_cast<int>(int_arg(a, "stride"))};
    if (s.k != 1 && s.k != 3) throw std::invalid_argument("k: expected 1 or 3");
    if (s.stride != 1 && s.stride != 2) throw std::invalid_argument("stride: expected 1 or 2");
    const size_t ny = static_cast<size_t>(s.n * s.cout * s.ho() * s.wo());
    Vec x = f64_arg(a, "x", static_cast<size_t>(s.n * s.cin * s.h * s.w));
    Vec w = f64_arg(a, "weight", static_cast<size_t>(s.cout * s.cin * s.k * s.k));
    Vec b = f64_arg(a, "bias", static_cast<size_t>(s.cout));
    Vec gy = f64_arg(a, "gout", ny);
    return [=]() {
      Result r{
          {"out", Vec(ny)}, {"grad.x", Vec(x.size())}, {"grad.weight", Vec(w.size())}, {"grad.bias", Vec(b.size())}};
      conv2d_forward(x.data(), w.data(), b.data(), r["out"].data(), s);
      conv2d_backward(x.data(), w.data(), gy.data(), r["grad.x"].data(), r["grad.weight"].data(), r["grad.bias"].data(),
                      s);
      return r;
    };
  }
  if (op == "groupnorm") {
    GroupNormShape s{int_arg(a, "n"), int_arg(a, "c"), int_arg(a, "hw"), static_cast<int>(int_arg(a, "groups"))};
    if (s.groups < 1 || s.c % s.groups) throw std::invalid_argument("groups: must divide c");
    const size_t nx = static_cast<size_t>(s.n * s.c * s.hw);
    Vec x = f64_arg(a, "x", nx), w = f64_arg(a, "weight", static_cast<size_t>(s.c)),
        b = f64_arg(a, "bias", static_cast<size_t>(s.c));
    Vec gy = f64_arg(a, "gout", nx);
    return [=]() {
      Result r{{"out", Vec(nx)}, {"grad.x", Vec(nx)}, {"grad.weight", Vec(w.size())}, {"grad.bias", Vec(b.size())}};
      Vec mean(static_cast<size_t>(s.n * s.groups)), rstd(mean.size());
      groupnorm_forward(x.data(), w.data(), b.data(), r["out"].data(), mean.data(), rstd.data(), s);
      groupnorm_backward(x.data(), w.data(), mean.data(), rstd.data(), gy.data(), r["grad.x"].data(),
                         r["grad.weight"].data(), r["grad.bias"].data(), s);
      return r;
    };
  }
  if (op == "groupnorm_silu") {  // the fused templates in double (checked against central differences)
    GroupNormShape s{int_arg(a, "n"), int_arg(a, "c"), int_arg(a, "hw"), static_cast<int>(int_arg(a, "groups"))};
    if (s.groups < 1 || s.c % s.groups) throw std::invalid_argument("groups: must divide c");
    const size_t nx = static_cast<size_t>(s.n * s.c * s.hw);
    Vec x = f64_arg(a, "x", nx), w = f64_arg(a, "weight", static_cast<size_t>(s.c)),
        b = f64_arg(a, "bias", static_cast<size_t>(s.c));
    Vec gy = f64_arg(a, "gout", nx);
    return [=]() {
      Result r{{"out", Vec(nx)}, {"grad.x", Vec(nx)}, {"grad.weight", Vec(w.size())}, {"grad.bias", Vec(b.size())}};
      Vec mean(static_cast<size_t>(s.n * s.groups)), rstd(mean.size());
      groupnorm_silu_forward(x.data(), w.data(), b.data(), r["out"].data(), mean.data(), rstd.data(), s);
      groupnorm_silu_backward(x.data(), w.data(), b.data(), mean.data(), rstd.data(), gy.data(), r["grad.x"].data(),
                              r["grad.weight"].data(), r["grad.bias"].data(), s);
      return r;
    };
  }
  if (op == "silu") {
    Vec x = f64_arg(a, "x", SIZE_MAX);
    Vec gy = f64_arg(a, "gout", x.size());
    return [=]() {
      Result r{{"out", Vec(x.size())}, {"grad.x", Vec(x.size())}};
      silu_forward(x.data(), r["out"].data(), static_cast<int64_t>(x.size()));
      silu_backward(x.data(), gy.data(), r["grad.x"].data(), static_cast<int64_t>(x.size()));
      return r;
    };
  }
  if (op == "linear") {
    const int64_t n = int_arg(a, "n"), in = int_arg(a, "in"), out = int_arg(a, "out");
    Vec x = f64_arg(a, "x", static_cast<size_t>(n * in)), w = f64_arg(a, "weight", static_cast<size_t>(out * in));
    Vec b = f64_arg(a, "bias", static_cast<size_t>(out)), gy = f64_arg(a, "gout", static_cast<size_t>(n * out));
    return [=]() {
      Result r{{"out", Vec(gy.size())},
               {"grad.x", Vec(x.size())},
               {"grad.weight", Vec(w.size())},
               {"grad.bias", Vec(b.size())}};
      linear_forward(x.data(), w.data(), b.data(), r["out"].data(), n, in, out);
      linear_backward(x.data(), w.data(), gy.data(), r["grad.x"].data(), r["grad.weight"].data(), r["grad.bias"].data(),
                      n, in, out);
      return r;
    };
  }
  if (op == "time_embedding") {
    const int64_t c = int_arg(a, "c");
    Vec t = f64_arg(a, "t", SIZE_MAX);
    return [=]() {
      Result r{{"out", Vec(t.size() * static_cast<size_t>(c))}};
      time_embedding(t.data(), r["out"].data(), static_cast<int64_t>(t.size()), c);
      return r;
    };
  }
  if (op == "attention") {
    const int64_t n = int_arg(a, "n"), c = int_arg(a, "c"), p = int_arg(a, "p");
    Vec qkv = f64_arg(a, "qkv", static_cast<size_t>(n * 3 * c * p)),
        gy = f64_arg(a, "gout", static_cast<size_t>(n * c * p));
    return [=]() {
      Result r{{"out", Vec(gy.size())}, {"attn", Vec(static_cast<size_t>(n * p * p))}, {"grad.qkv", Vec(qkv.size())}};
      attention_forward(qkv.data(), r["attn"].data(), r["out"].data(), n, c, p);
      attention_backward(qkv.data(), r["attn"].data(), gy.data(), r["grad.qkv"].data(), n, c, p);
      return r;
    };
  }
  if (op == "upsample2") {
    const int64_t planes = int_arg(a, "planes"), h = int_arg(a, "h"), w = int_arg(a, "w");
    Vec x = f64_arg(a, "x", static_cast<size_t>(planes * h * w)),
        gy = f64_arg(a, "gout", static_cast<size_t>(planes * h * w * 4));
    return [=]() {
      Result r{{"out", Vec(gy.size())}, {"grad.x", Vec(x.size())}};
      upsample2_forward(x.data(), r["out"].data(), planes, h, w);
      upsample2_backward(gy.data(), r["grad.x"].data(), planes, h, w);
      return r;
    };
  }
  throw std::invalid_argument("referenceOp: unknown op \"" + op + "\"");
}

std::function<Result()> reference_unet_plan(const UNetConfig& config, const RefArgs& a) {
  auto net = std::make_shared<UNetCpu<double>>(config);
  const int64_t n = int_arg(a, "n"), r = config.resolution;
  Vec params = f64_arg(a, "params", static_cast<size_t>(net->plan().param_count));
  Vec x = f64_arg(a, "x", static_cast<size_t>(n * config.in_channels * r * r));
  Vec t = f64_arg(a, "t", static_cast<size_t>(n));
  Vec gout = f64_arg(a, "gout", static_cast<size_t>(n * config.out_channels * r * r));
  return [=]() {
    Result res{{"out", Vec(gout.size())}, {"grad.params", Vec(params.size())}, {"grad.x", Vec(x.size())}};
    auto tape = net->forward(params.data(), x.data(), t.data(), n, res["out"].data());
    net->backward(params.data(), *tape, gout.data(), res["grad.params"].data(), res["grad.x"].data());
    return res;
  };
}

}  // namespace ks::cpu
