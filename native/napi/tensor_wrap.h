// The JS handle of a native tensor. Memory is released by dispose() or, as a fallback, when the
// handle is garbage collected; the storage itself lives on while queued work still uses it.
#pragma once
#include <napi.h>

#include "kintsugi/tensor.h"

namespace ks::napi {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, Tensor t);
  static const Tensor& unwrap(const Napi::Value& v, const char* what);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value guarded(const Napi::CallbackInfo& info);
  void dispose(const Napi::CallbackInfo& info);
  void release(Napi::Env env);

  Tensor tensor_;
  int64_t reported_ = 0;  // bytes reported to V8 as external memory
};

}  // namespace ks::napi
