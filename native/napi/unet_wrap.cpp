#include "unet_wrap.h"

#include <memory>
#include <stdexcept>
#include "convert.h"
#include "kintsugi/unet_engine.h"
#include "kintsugi/queue.h"
#include "tensor_wrap.h"

namespace ks::napi {
namespace {

using Info = const Napi::CallbackInfo&;
// A tape is filled by the forward task and read by backward tasks queued after it on the same device.
struct TapeHolder {
  std::shared_ptr<void> tape;
  Device device;
};

struct NetHolder {
  std::shared_ptr<UNetEngine> engine;
  Device device;
  int64_t resolution, in_c, out_c, params;
  int64_t temb_c;  // width of the time embedding (4 * channels), the width of cond
};

Napi::Value layout(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const UNetPlan plan = unet_plan(config_arg(info[0]));
    auto arr = Napi::Array::New(env, plan.params.size());
    for (uint32_t i = 0; i < plan.params.size(); ++i) {
      const ParamInfo& p = plan.params[i];
      auto o = Napi::Object::New(env);
      o.Set("name", p.name);
      o.Set("shape", shape_value(env, p.shape));
      o.Set("offset", static_cast<double>(p.offset));
      o.Set("numel", static_cast<double>(p.numel));
      arr.Set(i, o);
    }
    // The stage list, for counting FLOPs and bytes (lib/cost.ts) without restating the architecture.
    static const char* const kinds[] = {"res", "attn", "down", "up"};
    auto stages = Napi::Array::New(env, plan.stages.size());
    for (uint32_t i = 0; i < plan.stages.size(); ++i) {
      const UNetPlan::Stage& st = plan.stages[i];
      auto o = Napi::Object::New(env);
      o.Set("kind", kinds[static_cast<int>(st.kind)]);
      o.Set("size", st.size);
      o.Set("cin", st.cin);
      o.Set("cout", st.cout);
      o.Set("skipChannels", st.skip_c);
      stages.Set(i, o);
    }
    auto out = Napi::Object::New(env);
    out.Set("params", arr);
    out.Set("paramCount", static_cast<double>(plan.param_count));
    out.Set("stages", stages);
    return Napi::Value(out);
  });
}

void init_params(Info info) {
  guarded(info.Env(), [&] {
    const UNetConfig config = config_arg(info[0]);
    const uint64_t seed = u64_arg(info[1], "seed");
    const Tensor& out = TensorWrap::unwrap(info[2], "out");
    if (out.device().is_cuda()) throw std::invalid_argument("unetInit: out must be on the cpu (copy it to the GPU after)");
    if (out.numel() != unet_param_count(config))
      throw std::invalid_argument("unetInit: out must have " + std::to_string(unet_param_count(config)) + " elements, got " +
                                  std::to_string(out.numel()));
    Task task;
    task.writes = {out.storage};
    task.run = [config, seed, out] { unet_init(config, seed, out.data()); };
    submit(out.device(), std::move(task));
  });
}

NetHolder* net_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("net: expected a UNet handle");
  return v.As<Napi::External<NetHolder>>().Data();
}

Napi::Value create(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const UNetConfig config = config_arg(info[0]);
    const Device device = device_arg(info[1], "device");
    check_device(device);
    auto* h = new NetHolder{std::shared_ptr<UNetEngine>(make_unet_engine(config, device)), device, config.resolution,
                            config.in_channels, config.out_channels, unet_param_count(config),
                            4 * config.channels};
    return Napi::Value(Napi::External<NetHolder>::New(env, h, [](Napi::Env, NetHolder* p) { delete p; }));
  });
}

void require_device(const Tensor& t, const Device& d, const char* what) {
  if (t.device() != d)
    throw std::invalid_argument(std::string(what) + ": expected a tensor on the UNet's device " + to_string(d) + ", got " +
                                to_string(t.device()));
}

void require_shape(const Tensor& t, const Shape& shape, const char* what) {
  if (t.shape != shape)
    throw std::invalid_argument(std::string(what) + ": expected shape " + shape_string(shape) + ", got " + shape_string(t.shape));
}

// forward(net, params, x, t, out, keepTape = true, cond = null) -> tape (a tape that only knows its batch
// when keepTape is false: inference, activations freed as they die). cond [n, 4C] is added to the time
// embedding (a condition embedding made outside the graph).
Napi::Value forward(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    NetHolder* h = net_of(info[0]);
    const Tensor& params = TensorWrap::unwrap(info[1], "params");
    const Tensor& x = TensorWrap::unwrap(info[2], "x");
    const Tensor& t = TensorWrap::unwrap(info[3], "t");
    const Tensor& out = TensorWrap::unwrap(info[4], "out");
    for (auto [tensor, name] : {std::pair{&params, "params"}, {&x, "x"}, {&t, "t"}, {&out, "out"}})
      require_device(*tensor, h->device, name);
    if (x.shape.size() != 4) throw std::invalid_argument("x: expected [n, c, h, w], got " + shape_string(x.shape));
    const int64_t n = x.shape[0];
    require_shape(params, {h->params}, "params");
    require_shape(x, {n, h->in_c, h->resolution, h->resolution}, "x");
    require_shape(t, {n}, "t");
    require_shape(out, {n, h->out_c, h->resolution, h->resolution}, "out");
    const bool keep = info.Length() < 6 || info[5].IsUndefined() || info[5].ToBoolean().Value();
    const bool has_cond = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined();
    Tensor cond = has_cond ? TensorWrap::unwrap(info[6], "cond") : Tensor();
    if (has_cond) {
      require_device(cond, h->device, "cond");
      require_shape(cond, {n, h->temb_c}, "cond");
    }
    auto holder = std::make_shared<TapeHolder>();
    holder->device = h->device;
    Task task;
    task.reads = {params.storage, x.storage, t.storage};
    if (has_cond) task.reads.push_back(cond.storage);
    task.writes = {out.storage};
    task.run = [engine = h->engine, holder, params, x, t, out, n, keep, cond, has_cond] {
      holder->tape = engine->forward(params.data(), x.data(), t.data(), n, out.data(), keep, has_cond ? cond.data() : nullptr);
    };
    submit(params.device(), std::move(task));
    auto* boxed = new std::shared_ptr<TapeHolder>(holder);
    return Napi::Value(Napi::External<std::shared_ptr<TapeHolder>>::New(
        env, boxed, [](Napi::Env, std::shared_ptr<TapeHolder>* p) { delete p; }));
  });
}

// backward(net, params, tape, gout, grads, gx | null, gcond | null): grads += dL/dparams, gx = dL/dx,
// gcond = dL/dcond.
void backward(Info info) {
  guarded(info.Env(), [&] {
    NetHolder* h = net_of(info[0]);
    const Tensor& params = TensorWrap::unwrap(info[1], "params");
    if (!info[2].IsExternal()) throw std::invalid_argument("tape: expected the tape returned by forward");
    std::shared_ptr<TapeHolder> holder = *info[2].As<Napi::External<std::shared_ptr<TapeHolder>>>().Data();
    const Tensor& gout = TensorWrap::unwrap(info[3], "gout");
    const Tensor& grads = TensorWrap::unwrap(info[4], "grads");
    const bool want_gx = !info[5].IsNull() && !info[5].IsUndefined();
    Tensor gx = want_gx ? TensorWrap::unwrap(info[5], "gx") : Tensor();
    const bool want_gcond = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined();
    Tensor gcond = want_gcond ? TensorWrap::unwrap(info[6], "gcond") : Tensor();
    for (auto [tensor, name] : {std::pair{&params, "params"}, {&gout, "gout"}, {&grads, "grads"}})
      require_device(*tensor, h->device, name);
    require_shape(params, {h->params}, "params");
    require_shape(grads, {h->params}, "grads");
    if (gout.shape.size() != 4) throw std::invalid_argument("gout: expected [n, c, h, w], got " + shape_string(gout.shape));
    const int64_t n = gout.shape[0];
    require_shape(gout, {n, h->out_c, h->resolution, h->resolution}, "gout");
    if (want_gx) {
      require_device(gx, h->device, "gx");
      require_shape(gx, {n, h->in_c, h->resolution, h->resolution}, "gx");
    }
    if (want_gcond) {
      require_device(gcond, h->device, "gcond");
      require_shape(gcond, {n, h->temb_c}, "gcond");
    }
    Task task;
    task.reads = {params.storage, gout.storage};
    task.writes = {grads.storage};
    if (want_gx) task.writes.push_back(gx.storage);
    if (want_gcond) task.writes.push_back(gcond.storage);
    task.run = [engine = h->engine, holder, params, gout, grads, gx, want_gx, gcond, want_gcond, n] {
      if (!holder->tape) throw std::runtime_error("backward: the tape is empty (its forward failed or it was released)");
      if (engine->tape_batch(holder->tape.get()) != n)
        throw std::runtime_error("backward: gout has batch " + std::to_string(n) + ", the tape's forward had " +
                                 std::to_string(engine->tape_batch(holder->tape.get())));
      engine->backward(params.data(), holder->tape.get(), gout.data(), grads.data(), want_gx ? gx.data() : nullptr,
                       want_gcond ? gcond.data() : nullptr);
    };
    submit(params.device(), std::move(task));
  });
}

// Frees a tape's activations once the work queued so far has run.
void release_tape(Info info) {
  guarded(info.Env(), [&] {
    if (!info[0].IsExternal()) throw std::invalid_argument("tape: expected a tape");
    std::shared_ptr<TapeHolder> holder = *info[0].As<Napi::External<std::shared_ptr<TapeHolder>>>().Data();
    Task task;
    task.run = [holder] { holder->tape.reset(); };
    // On the tape's own queue: after every backward queued before, and in stream order on a GPU.
    submit(holder->device, std::move(task));
  });
}

}  // namespace

void define_unet(Napi::Env env, Napi::Object exports) {
  exports.Set("unetLayout", Napi::Function::New<layout>(env, "unetLayout"));
  exports.Set("unetInit", Napi::Function::New<init_params>(env, "unetInit"));
  exports.Set("unetCreate", Napi::Function::New<create>(env, "unetCreate"));
  exports.Set("unetForward", Napi::Function::New<forward>(env, "unetForward"));
  exports.Set("unetBackward", Napi::Function::New<backward>(env, "unetBackward"));
  exports.Set("unetReleaseTape", Napi::Function::New<release_tape>(env, "unetReleaseTape"));
}

}  // namespace ks::napi
