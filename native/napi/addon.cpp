// The module's exports: devices, tensors, ops, memory statistics. Glue only; the math is in cpu/ and cuda/.
#include <napi.h>

#include <cstring>
#include "bootstrap_js.h"
#include "bridge.h"
#include "convert.h"
#include "gsure_js.h"
#include "kintsugi/allocator.h"
#include "kintsugi/cpu_info.h"
#include "kintsugi/ops.h"
#include "kintsugi/queue.h"
#include "nn_op.h"
#include "reference.h"
#include "tensor_wrap.h"
#include "unet_wrap.h"

#ifndef KS_CUDA_ARCHITECTURES
#define KS_CUDA_ARCHITECTURES ""
#endif

namespace ks::napi {
namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value devices(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    auto list = list_devices();
    auto arr = Napi::Array::New(env, list.size());
    for (uint32_t i = 0; i < list.size(); ++i) {
      const DeviceInfo& d = list[i];
      auto o = Napi::Object::New(env);
      o.Set("device", to_string(d.device));
      o.Set("type", d.device.is_cuda() ? "cuda" : "cpu");
      o.Set("name", d.name);
      o.Set("computeCapability",
            d.device.is_cuda()
                ? Napi::Value(Napi::String::New(env, std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)))
                : env.Null());
      o.Set("totalMemory", Napi::Number::New(env, static_cast<double>(d.total_memory)));
      o.Set("multiprocessors", d.multiprocessors);
      arr.Set(i, o);
    }
    return Napi::Value(arr);
  });
}

Napi::Value cuda_status_js(Info info) {
  Napi::Env env = info.Env();
  const CudaStatus s = cuda_status();
  auto o = Napi::Object::New(env);
  o.Set("compiled", s.compiled);
  o.Set("deviceCount", s.device_count);
  o.Set("code", s.code);
  o.Set("runtimeVersion", s.runtime_version);
  o.Set("driverVersion", s.driver_version);
  o.Set("reason", s.device_count > 0 ? env.Null() : Napi::Value(Napi::String::New(env, s.reason)));
  return o;
}

Napi::Value build_info(Info info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("cuda", static_cast<bool>(KS_WITH_CUDA));
  o.Set("cudaArchitectures", KS_CUDA_ARCHITECTURES);
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("compiler", __VERSION__);
  o.Set("cpuIsa", ks::cpu::cpu_isa_name());
  o.Set("cpuIsaSupported", ks::cpu::cpu_isa_supported());
  o.Set("cpuThreads", ks::cpu::num_threads());
  return o;
}

// The CPU pool's counters (kintsugi/cpu_info.h), for the benchmarks' idle-time figure.
Napi::Value cpu_pool_stats_js(Info info) {
  const ks::cpu::PoolStats s = ks::cpu::cpu_pool_stats();
  auto o = Napi::Object::New(info.Env());
  o.Set("threads", ks::cpu::num_threads());
  o.Set("parallelMs", static_cast<double>(s.parallel_ns) / 1e6);
  o.Set("busyMs", static_cast<double>(s.busy_ns) / 1e6);
  o.Set("jobs", static_cast<double>(s.jobs));
  return o;
}

Napi::Value empty(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    Device d = device_arg(info[0], "device");
    Shape shape = shape_arg(info[1], "shape");
    const bool guard = info.Length() > 2 && info[2].ToBoolean();
    return Napi::Value(TensorWrap::wrap(env, Tensor(d, std::move(shape), guard)));
  });
}

void fill_js(Info info) {
  guarded(info.Env(), [&] { fill(TensorWrap::unwrap(info[0], "out"), float_arg(info[1], "value")); });
}

void randn_js(Info info) {
  guarded(info.Env(), [&] { randn(TensorWrap::unwrap(info[0], "out"), rng_arg(info, 1)); });
}

void uniform_js(Info info) {
  guarded(info.Env(), [&] {
    uniform(TensorWrap::unwrap(info[0], "out"), float_arg(info[1], "low"), float_arg(info[2], "high"),
            rng_arg(info, 3));
  });
}

void random_bits_js(Info info) {
  guarded(info.Env(), [&] { random_bits(TensorWrap::unwrap(info[0], "out"), rng_arg(info, 1)); });
}

void copy_js(Info info) {
  guarded(info.Env(), [&] { copy(TensorWrap::unwrap(info[0], "src"), TensorWrap::unwrap(info[1], "dst")); });
}

void add_js(Info info) {
  guarded(info.Env(), [&] {
    add(TensorWrap::unwrap(info[0], "a"), TensorWrap::unwrap(info[1], "b"), TensorWrap::unwrap(info[2], "out"));
  });
}

void scale_js(Info info) {
  guarded(info.Env(), [&] {
    scale(TensorWrap::unwrap(info[0], "a"), float_arg(info[1], "s"), TensorWrap::unwrap(info[2], "out"));
  });
}

void sum_js(Info info) {
  guarded(info.Env(), [&] { sum(TensorWrap::unwrap(info[0], "a"), TensorWrap::unwrap(info[1], "out")); });
}

void sum_squares_js(Info info) {
  guarded(info.Env(), [&] { sum_squares(TensorWrap::unwrap(info[0], "a"), TensorWrap::unwrap(info[1], "out")); });
}

// adamw(params, grads, m, v, sumsq, {lr, beta1, beta2, eps, weightDecay, step, maxNorm})
void adamw_js(Info info) {
  guarded(info.Env(), [&] {
    if (!info[5].IsObject()) throw std::invalid_argument("adamw: expected an options object");
    auto o = info[5].As<Napi::Object>();
    AdamWConfig c;
    c.lr = float_arg(o.Get("lr"), "lr");
    c.beta1 = float_arg(o.Get("beta1"), "beta1");
    c.beta2 = float_arg(o.Get("beta2"), "beta2");
    c.eps = float_arg(o.Get("eps"), "eps");
    c.weight_decay = float_arg(o.Get("weightDecay"), "weightDecay");
    c.step = static_cast<int64_t>(u64_arg(o.Get("step"), "step"));
    c.max_norm = float_arg(o.Get("maxNorm"), "maxNorm");
    adamw(TensorWrap::unwrap(info[0], "params"), TensorWrap::unwrap(info[1], "grads"), TensorWrap::unwrap(info[2], "m"),
          TensorWrap::unwrap(info[3], "v"), TensorWrap::unwrap(info[4], "sumsq"), c);
  });
}

void ema_js(Info info) {
  guarded(info.Env(), [&] {
    ema_update(TensorWrap::unwrap(info[0], "ema"), TensorWrap::unwrap(info[1], "params"), float_arg(info[2], "decay"));
  });
}

// combine(out, [x0, c0, x1, c1, ...]) with 1 to 3 (tensor, per-sample coefficient tensor) pairs.
void combine_js(Info info) {
  guarded(info.Env(), [&] {
    const Tensor& out = TensorWrap::unwrap(info[0], "out");
    if (!info[1].IsArray()) throw std::invalid_argument("combine: expected an array of [tensor, coefficients] pairs");
    auto arr = info[1].As<Napi::Array>();
    std::vector<std::pair<Tensor, Tensor>> terms;
    for (uint32_t k = 0; k + 1 < arr.Length(); k += 2)
      terms.emplace_back(TensorWrap::unwrap(arr.Get(k), "x"), TensorWrap::unwrap(arr.Get(k + 1), "coefficients"));
    if (arr.Length() % 2) throw std::invalid_argument("combine: terms come in [tensor, coefficients] pairs");
    combine(out, terms);
  });
}

void clamp_js(Info info) {
  guarded(info.Env(), [&] {
    clamp(TensorWrap::unwrap(info[0], "a"), float_arg(info[1], "low"), float_arg(info[2], "high"),
          TensorWrap::unwrap(info[3], "out"));
  });
}

void mul_js(Info info) {
  guarded(info.Env(), [&] {
    mul(TensorWrap::unwrap(info[0], "a"), TensorWrap::unwrap(info[1], "b"), TensorWrap::unwrap(info[2], "out"));
  });
}

// k as a number (validated: an integer in [1, 64]).
int block_k_arg(const Napi::Value& v) {
  if (!v.IsNumber()) throw std::invalid_argument("k: expected an integer, got a non-number");
  const double k = v.As<Napi::Number>().DoubleValue();
  if (!(k >= 1 && k <= 64) || k != static_cast<int>(k))
    throw std::invalid_argument("k: expected an integer in [1, 64], got " + std::to_string(k));
  return static_cast<int>(k);
}

// blockAverageVt(x, k, scale, out) / blockAverageV(c, k, scale, out)
void block_average_vt_js(Info info) {
  guarded(info.Env(), [&] {
    block_average_vt(TensorWrap::unwrap(info[0], "x"), block_k_arg(info[1]), float_arg(info[2], "scale"),
                     TensorWrap::unwrap(info[3], "out"));
  });
}

void block_average_v_js(Info info) {
  guarded(info.Env(), [&] {
    block_average_v(TensorWrap::unwrap(info[0], "c"), block_k_arg(info[1]), float_arg(info[2], "scale"),
                    TensorWrap::unwrap(info[3], "out"));
  });
}

// fft2(x, inverse, out)
void fft2_js(Info info) {
  guarded(info.Env(), [&] {
    if (!info[1].IsBoolean()) throw std::invalid_argument("inverse: expected a boolean");
    fft2(TensorWrap::unwrap(info[0], "x"), info[1].As<Napi::Boolean>().Value(), TensorWrap::unwrap(info[2], "out"));
  });
}

void write_js(Info info) {
  guarded(info.Env(), [&] {
    const Tensor& dst = TensorWrap::unwrap(info[0], "dst");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw std::invalid_argument("data: expected a Float32Array");
    auto arr = info[1].As<Napi::Float32Array>();
    std::vector<float> data(arr.ElementLength());
    if (!data.empty()) std::memcpy(data.data(), arr.Data(), data.size() * sizeof(float));
    write_host(dst, std::move(data));
  });
}

Napi::Value read_js(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const Tensor& src = TensorWrap::unwrap(info[0], "tensor");
    auto [promise, complete] = Bridge::of(env)->promise(env);
    read_host(src, [complete = complete](std::vector<float>&& data, const std::string* error) {
      auto owned = std::make_shared<std::vector<float>>(std::move(data));
      complete(error, [owned](Napi::Env env) {
        // Hand the buffer to V8 without copying; it is freed when the Float32Array is collected.
        auto* vec = new std::vector<float>(std::move(*owned));
        auto buf = Napi::ArrayBuffer::New(
            env, vec->data(), vec->size() * sizeof(float), [](Napi::Env, void*, std::vector<float>* v) { delete v; },
            vec);
        return Napi::Value(Napi::Float32Array::New(env, vec->size(), buf, 0));
      });
    });
    return Napi::Value(promise);
  });
}

Napi::Value check_guard_js(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const Tensor& t = TensorWrap::unwrap(info[0], "tensor");
    auto [promise, complete] = Bridge::of(env)->promise(env);
    check_guard(t, [complete = complete](bool intact, const std::string* error) {
      complete(error, [intact](Napi::Env env) { return Napi::Value(Napi::Boolean::New(env, intact)); });
    });
    return Napi::Value(promise);
  });
}

Napi::Value synchronize_js(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    Device d = device_arg(info[0], "device");
    auto [promise, complete] = Bridge::of(env)->promise(env);
    synchronize(d, [complete = complete](const std::string* error) { complete(error, nullptr); });
    return Napi::Value(promise);
  });
}

Napi::Value memory_stats(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    Device d = device_arg(info[0], "device");
    check_device(d);
    const MemoryStats s = allocator_for(d).stats();
    auto o = Napi::Object::New(env);
    o.Set("inUse", static_cast<double>(s.in_use));
    o.Set("peak", static_cast<double>(s.peak));
    o.Set("cached", static_cast<double>(s.cached));
    o.Set("reserved", static_cast<double>(s.reserved));
    o.Set("allocations", static_cast<double>(s.allocations));
    return Napi::Value(o);
  });
}

void reset_peak(Info info) {
  guarded(info.Env(), [&] {
    Device d = device_arg(info[0], "device");
    check_device(d);
    allocator_for(d).reset_peak();
  });
}

Napi::Value empty_cache_js(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    Device d = device_arg(info[0], "device");
    auto [promise, complete] = Bridge::of(env)->promise(env);
    empty_cache(d, [complete = complete](const std::string* error) { complete(error, nullptr); });
    return Napi::Value(promise);
  });
}

// Test hook (kintsugi/ops.h fail_task).
void fail_task_js(Info info) {
  guarded(info.Env(), [&] {
    const Tensor& t = TensorWrap::unwrap(info[0], "tensor");
    if (!info[1].IsString()) throw std::invalid_argument("message: expected a string");
    fail_task(t, info[1].As<Napi::String>().Utf8Value());
  });
}

Napi::Value tasks_pending_js(Info info) { return Napi::Number::New(info.Env(), static_cast<double>(tasks_pending())); }

Napi::Object init(Napi::Env env, Napi::Object exports) {
  // KINTSUGI_CPU_ISA asked for a kernel variant this process cannot use: refuse to load, naming it.
  if (!ks::cpu::cpu_isa_error().empty()) throw Napi::Error::New(env, ks::cpu::cpu_isa_error());
  if (!ks::cpu::cpu_threads_error().empty()) throw Napi::Error::New(env, ks::cpu::cpu_threads_error());
  Bridge::create(env);
  exports.Set("NativeTensor", TensorWrap::define(env));
  exports.Set("devices", Napi::Function::New<devices>(env, "devices"));
  exports.Set("cudaStatus", Napi::Function::New<cuda_status_js>(env, "cudaStatus"));
  exports.Set("buildInfo", Napi::Function::New<build_info>(env, "buildInfo"));
  exports.Set("cpuPoolStats", Napi::Function::New<cpu_pool_stats_js>(env, "cpuPoolStats"));
  exports.Set("empty", Napi::Function::New<empty>(env, "empty"));
  exports.Set("fill", Napi::Function::New<fill_js>(env, "fill"));
  exports.Set("randn", Napi::Function::New<randn_js>(env, "randn"));
  exports.Set("uniform", Napi::Function::New<uniform_js>(env, "uniform"));
  exports.Set("randomBits", Napi::Function::New<random_bits_js>(env, "randomBits"));
  exports.Set("copy", Napi::Function::New<copy_js>(env, "copy"));
  exports.Set("add", Napi::Function::New<add_js>(env, "add"));
  exports.Set("scale", Napi::Function::New<scale_js>(env, "scale"));
  exports.Set("sum", Napi::Function::New<sum_js>(env, "sum"));
  exports.Set("sumSquares", Napi::Function::New<sum_squares_js>(env, "sumSquares"));
  exports.Set("adamw", Napi::Function::New<adamw_js>(env, "adamw"));
  exports.Set("emaUpdate", Napi::Function::New<ema_js>(env, "emaUpdate"));
  exports.Set("combine", Napi::Function::New<combine_js>(env, "combine"));
  exports.Set("clamp", Napi::Function::New<clamp_js>(env, "clamp"));
  exports.Set("mul", Napi::Function::New<mul_js>(env, "mul"));
  exports.Set("blockAverageVt", Napi::Function::New<block_average_vt_js>(env, "blockAverageVt"));
  exports.Set("blockAverageV", Napi::Function::New<block_average_v_js>(env, "blockAverageV"));
  exports.Set("fft2", Napi::Function::New<fft2_js>(env, "fft2"));
  exports.Set("write", Napi::Function::New<write_js>(env, "write"));
  exports.Set("read", Napi::Function::New<read_js>(env, "read"));
  exports.Set("checkGuard", Napi::Function::New<check_guard_js>(env, "checkGuard"));
  exports.Set("synchronize", Napi::Function::New<synchronize_js>(env, "synchronize"));
  exports.Set("memoryStats", Napi::Function::New<memory_stats>(env, "memoryStats"));
  exports.Set("resetPeakMemory", Napi::Function::New<reset_peak>(env, "resetPeakMemory"));
  exports.Set("emptyCache", Napi::Function::New<empty_cache_js>(env, "emptyCache"));
  exports.Set("nnOp", Napi::Function::New<nn_op>(env, "nnOp"));
  exports.Set("op", Napi::Function::New<nn_op>(env, "op"));
  exports.Set("supports", Napi::Function::New<supports_js>(env, "supports"));
  exports.Set("ops", Napi::Function::New<ops_js>(env, "ops"));
  exports.Set("referenceOp", Napi::Function::New<reference_op>(env, "referenceOp"));
  exports.Set("referenceUNet", Napi::Function::New<reference_unet>(env, "referenceUNet"));
  define_bootstrap(env, exports);
  define_unet(env, exports);
  define_gsure(env, exports);
  exports.Set("failTask", Napi::Function::New<fail_task_js>(env, "failTask"));
  exports.Set("tasksPending", Napi::Function::New<tasks_pending_js>(env, "tasksPending"));
  return exports;
}

}  // namespace
}  // namespace ks::napi

static Napi::Object kintsugi_init(Napi::Env env, Napi::Object exports) { return ks::napi::init(env, exports); }
NODE_API_MODULE(kintsugi, kintsugi_init)
