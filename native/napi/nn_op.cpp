// op(name, attrs, inputs, outputs): any op the registry can call by name (native/core/registry.h), on
// the device of its tensors; nnOp is the same function under the name the network ops first had.
// supports(name, device) and ops() describe the registry. Conversion only: the checks are in core.
#include "nn_op.h"

#include <stdexcept>
#include "convert.h"
#include "kintsugi/registry.h"
#include "tensor_wrap.h"

namespace ks::napi {
namespace {

std::vector<Tensor> tensors(const Napi::Value& v, const char* what, bool optional) {
  if (!v.IsArray()) throw std::invalid_argument(std::string("op: ") + what + " must be an array of tensors");
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

std::map<std::string, double> attrs(const Napi::Object& o) {
  std::map<std::string, double> out;
  const Napi::Array keys = o.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    const std::string key = keys.Get(k).ToString().Utf8Value();
    const Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw std::invalid_argument("op: attribute " + key + " must be a number");
    out[key] = v.As<Napi::Number>().DoubleValue();
  }
  return out;
}

}  // namespace

void nn_op(const Napi::CallbackInfo& info) {
  guarded(info.Env(), [&] {
    if (!info[0].IsString() || !info[1].IsObject()) throw std::invalid_argument("op(name, attrs, inputs, outputs)");
    OpCall call{attrs(info[1].As<Napi::Object>()), tensors(info[2], "inputs", false),
                tensors(info[3], "outputs", true)};
    call_op(info[0].As<Napi::String>().Utf8Value(), call);
  });
}

Napi::Value supports_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&] {
    if (!info[0].IsString()) throw std::invalid_argument("supports(op, device): op must be a string");
    return Napi::Value(
        Napi::Boolean::New(env, supports(info[0].As<Napi::String>().Utf8Value(), device_arg(info[1], "device"))));
  });
}

Napi::Value ops_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<OpEntry> list = registered_ops();
  auto arr = Napi::Array::New(env, list.size());
  for (uint32_t i = 0; i < list.size(); ++i) {
    auto o = Napi::Object::New(env);
    o.Set("name", list[i].name);
    o.Set("cuda", list[i].cuda);
    o.Set("byName", list[i].generic);
    arr.Set(i, o);
  }
  return arr;
}

}  // namespace ks::napi
