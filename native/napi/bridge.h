// Bridges work finished on device worker threads back to Promises on the JS thread.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace ks::napi {

// One per Node environment (main thread or worker_threads). Worker threads hold it by shared_ptr;
// once the environment is torn down, late completions are dropped instead of touching a dead env.
class Bridge : public std::enable_shared_from_this<Bridge> {
 public:
  using Settle = std::function<Napi::Value(Napi::Env)>;

  static std::shared_ptr<Bridge> create(Napi::Env env);
  static std::shared_ptr<Bridge> of(Napi::Env env);

  // On the JS thread: a new pending Promise and the function a worker calls (once) to settle it:
  // with error == nullptr the promise resolves to settle(env), otherwise it rejects with the message.
  struct Pending;
  using Complete = std::function<void(const std::string* error, Settle settle)>;
  std::pair<Napi::Promise, Complete> promise(Napi::Env env);

  void shutdown();  // env cleanup: from now on completions are dropped

 private:
  struct Message;
  static void call_js(Napi::Env env, Napi::Function, std::nullptr_t*, Message* msg);
  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Message, &Bridge::call_js>;

  void post(Message* msg);

  std::mutex mu_;
  bool alive_ = true;
  Tsfn tsfn_;
  int pending_ = 0;  // JS thread only: the tsfn keeps the event loop alive while this is > 0
};

}  // namespace ks::napi
