#include "unet_wrap.h"

#include <memory>
#include <stdexcept>
#include <algorithm>
#include "bridge.h"
#include "convert.h"
#include "kintsugi/unet_engine.h"
#include "tensor_wrap.h"

namespace ks::napi {
namespace {

using Info = const Napi::CallbackInfo&;
// The UNet and its tapes live in native/core (kintsugi/unet_engine.h); this file converts arguments.
using TapeRef = std::shared_ptr<UNetTape>;

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
    // The entries of a stage profile (unetProfileStages), in its order.
    const std::vector<StageEntry> entries = unet_stage_entries(plan);
    auto timed = Napi::Array::New(env, entries.size());
    for (uint32_t i = 0; i < entries.size(); ++i) {
      const StageEntry& e = entries[i];
      auto o = Napi::Object::New(env);
      o.Set("stage", e.name);
      o.Set("section", e.section);
      o.Set("kind", e.kind);
      o.Set("size", e.size);
      o.Set("cin", e.cin);
      o.Set("cout", e.cout);
      timed.Set(i, o);
    }
    auto out = Napi::Object::New(env);
    out.Set("timedStages", timed);
    out.Set("params", arr);
    out.Set("paramCount", static_cast<double>(plan.param_count));
    out.Set("stages", stages);
    return Napi::Value(out);
  });
}

void init_params(Info info) {
  guarded(info.Env(),
          [&] { unet_init_params(config_arg(info[0]), u64_arg(info[1], "seed"), TensorWrap::unwrap(info[2], "out")); });
}

UNetHandle* net_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("net: expected a UNet handle");
  return v.As<Napi::External<UNetHandle>>().Data();
}

TapeRef tape_of(const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw std::invalid_argument(std::string("tape: expected ") + what);
  return *v.As<Napi::External<TapeRef>>().Data();
}

Napi::Value create(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    auto* h = new UNetHandle(unet_create(config_arg(info[0]), device_arg(info[1], "device")));
    return Napi::Value(Napi::External<UNetHandle>::New(env, h, [](Napi::Env, UNetHandle* p) { delete p; }));
  });
}

// forward(net, params, x, t, out, keepTape = true, cond = null) -> tape (a tape that only knows its batch
// when keepTape is false: inference, activations freed as they die). cond [n, 4C] is added to the time
// embedding (a condition embedding made outside the graph).
Napi::Value forward(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const bool keep = info.Length() < 6 || info[5].IsUndefined() || info[5].ToBoolean().Value();
    const bool has_cond = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined();
    TapeRef tape =
        unet_forward(*net_of(info[0]), TensorWrap::unwrap(info[1], "params"), TensorWrap::unwrap(info[2], "x"),
                     TensorWrap::unwrap(info[3], "t"), TensorWrap::unwrap(info[4], "out"), keep,
                     has_cond ? &TensorWrap::unwrap(info[6], "cond") : nullptr);
    return Napi::Value(
        Napi::External<TapeRef>::New(env, new TapeRef(std::move(tape)), [](Napi::Env, TapeRef* p) { delete p; }));
  });
}

// backward(net, params, tape, gout, grads, gx | null, gcond | null): grads += dL/dparams, gx = dL/dx,
// gcond = dL/dcond.
void backward(Info info) {
  guarded(info.Env(), [&] {
    const UNetHandle& net = *net_of(info[0]);
    const Tensor& params = TensorWrap::unwrap(info[1], "params");
    const TapeRef tape = tape_of(info[2], "the tape returned by forward");
    const Tensor& gout = TensorWrap::unwrap(info[3], "gout");
    const Tensor& grads = TensorWrap::unwrap(info[4], "grads");
    const bool want_gx = !info[5].IsNull() && !info[5].IsUndefined();
    const bool want_gcond = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined();
    unet_backward(net, params, tape, gout, grads, want_gx ? &TensorWrap::unwrap(info[5], "gx") : nullptr,
                  want_gcond ? &TensorWrap::unwrap(info[6], "gcond") : nullptr);
  });
}

// profileStages(net, params, x, t, out, gout, grads, gx | null) -> Promise<{ fwdMs, bwdMs }>: one forward
// and backward as forward() + backward() compute them (out written, grads +=, gx written), with each
// stage's forward and backward time (Float64Arrays in unetLayout's timedStages order).
Napi::Value profile_stages(Info info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    const UNetHandle& net = *net_of(info[0]);
    const bool want_gx = info.Length() > 7 && !info[7].IsNull() && !info[7].IsUndefined();
    auto [promise, complete] = Bridge::of(env)->promise(env);
    unet_profile_stages(net, TensorWrap::unwrap(info[1], "params"), TensorWrap::unwrap(info[2], "x"),
                        TensorWrap::unwrap(info[3], "t"), TensorWrap::unwrap(info[4], "out"),
                        TensorWrap::unwrap(info[5], "gout"), TensorWrap::unwrap(info[6], "grads"),
                        want_gx ? &TensorWrap::unwrap(info[7], "gx") : nullptr,
                        [complete = complete](StageTimes&& times, const std::string* error) {
                          auto r = std::make_shared<StageTimes>(std::move(times));
                          complete(error, [r](Napi::Env env) {
                            auto o = Napi::Object::New(env);
                            auto f = Napi::Float64Array::New(env, r->fwd_ms.size());
                            auto b = Napi::Float64Array::New(env, r->bwd_ms.size());
                            std::copy(r->fwd_ms.begin(), r->fwd_ms.end(), f.Data());
                            std::copy(r->bwd_ms.begin(), r->bwd_ms.end(), b.Data());
                            o.Set("fwdMs", f);
                            o.Set("bwdMs", b);
                            return Napi::Value(o);
                          });
                        });
    return Napi::Value(promise);
  });
}

void release_tape(Info info) {
  guarded(info.Env(), [&] { unet_release_tape(tape_of(info[0], "a tape")); });
}

}  // namespace

void define_unet(Napi::Env env, Napi::Object exports) {
  exports.Set("unetLayout", Napi::Function::New<layout>(env, "unetLayout"));
  exports.Set("unetInit", Napi::Function::New<init_params>(env, "unetInit"));
  exports.Set("unetCreate", Napi::Function::New<create>(env, "unetCreate"));
  exports.Set("unetForward", Napi::Function::New<forward>(env, "unetForward"));
  exports.Set("unetBackward", Napi::Function::New<backward>(env, "unetBackward"));
  exports.Set("unetProfileStages", Napi::Function::New<profile_stages>(env, "unetProfileStages"));
  exports.Set("unetReleaseTape", Napi::Function::New<release_tape>(env, "unetReleaseTape"));
}

}  // namespace ks::napi
