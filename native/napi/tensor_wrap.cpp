#include "tensor_wrap.h"

#include <stdexcept>
#include "convert.h"

namespace ks::napi {
namespace {
struct Constructor {
  Napi::FunctionReference ref;
};
// Set by define(); wrap() needs it to make new handles. One per environment.
thread_local Constructor* t_ctor = nullptr;
}  // namespace

Napi::Function TensorWrap::define(Napi::Env env) {
  Napi::Function f =
      DefineClass(env, "NativeTensor",
                  {InstanceAccessor<&TensorWrap::shape>("shape"), InstanceAccessor<&TensorWrap::device>("device"),
                   InstanceAccessor<&TensorWrap::disposed>("disposed"),
                   InstanceAccessor<&TensorWrap::guarded>("guarded"), InstanceMethod<&TensorWrap::dispose>("dispose")});
  t_ctor = new Constructor{Napi::Persistent(f)};
  env.AddCleanupHook([] {
    delete t_ctor;
    t_ctor = nullptr;
  });
  return f;
}

Napi::Object TensorWrap::wrap(Napi::Env env, Tensor t) {
  Napi::Object obj = t_ctor->ref.New({});
  TensorWrap* w = Unwrap(obj);
  w->tensor_ = std::move(t);
  w->reported_ = static_cast<int64_t>(w->tensor_.bytes());
  // GPU bytes count too: V8 then collects forgotten handles before device memory runs out.
  Napi::MemoryManagement::AdjustExternalMemory(env, w->reported_);
  return obj;
}

const Tensor& TensorWrap::unwrap(const Napi::Value& v, const char* what) {
  if (!v.IsObject() || !t_ctor || !v.As<Napi::Object>().InstanceOf(t_ctor->ref.Value()))
    throw std::invalid_argument(std::string(what) + ": expected a tensor");
  const Tensor& t = Unwrap(v.As<Napi::Object>())->tensor_;
  if (!t.storage) throw std::invalid_argument(std::string(what) + ": the tensor was disposed");
  return t;
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {}

TensorWrap::~TensorWrap() {
  // A finalizer: drop our reference; the allocator takes the memory back without any device call.
  if (reported_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_);
}

void TensorWrap::release(Napi::Env env) {
  if (reported_) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
  reported_ = 0;
  tensor_ = Tensor();
}

Napi::Value TensorWrap::shape(const Napi::CallbackInfo& info) { return shape_value(info.Env(), tensor_.shape); }

Napi::Value TensorWrap::device(const Napi::CallbackInfo& info) {
  if (!tensor_.storage) return info.Env().Null();
  return Napi::String::New(info.Env(), to_string(tensor_.device()));
}

Napi::Value TensorWrap::disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.storage);
}

Napi::Value TensorWrap::guarded(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensor_.storage && tensor_.storage->guarded());
}

void TensorWrap::dispose(const Napi::CallbackInfo& info) { release(info.Env()); }

}  // namespace ks::napi
