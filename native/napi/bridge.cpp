#include "bridge.h"

namespace ks::napi {

struct Bridge::Message {
  std::shared_ptr<Bridge> bridge;
  Napi::Promise::Deferred* deferred;
  bool failed = false;
  std::string error;
  Settle settle;
};

namespace {
struct Holder {
  std::shared_ptr<Bridge> bridge;
};
}  // namespace

std::shared_ptr<Bridge> Bridge::create(Napi::Env env) {
  auto bridge = std::make_shared<Bridge>();
  bridge->tsfn_ = Tsfn::New(env, "kintsugi", 0, 1);
  bridge->tsfn_.Unref(env);
  env.SetInstanceData<Holder>(new Holder{bridge});
  // Registered after the tsfn, so it runs before the tsfn is torn down (hooks run in reverse order).
  env.AddCleanupHook([bridge] { bridge->shutdown(); });
  return bridge;
}

std::shared_ptr<Bridge> Bridge::of(Napi::Env env) { return env.GetInstanceData<Holder>()->bridge; }

std::pair<Napi::Promise, Bridge::Complete> Bridge::promise(Napi::Env env) {
  auto* deferred = new Napi::Promise::Deferred(Napi::Promise::Deferred::New(env));
  Napi::Promise p = deferred->Promise();
  if (pending_++ == 0) tsfn_.Ref(env);
  std::shared_ptr<Bridge> self = shared_from_this();
  Complete complete = [self, deferred](const std::string* error, Settle settle) {
    auto* msg = new Message{self, deferred, error != nullptr, error ? *error : std::string(), std::move(settle)};
    self->post(msg);
  };
  return {p, complete};
}

void Bridge::post(Message* msg) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!alive_ || tsfn_.NonBlockingCall(msg) != napi_ok) {
    // The environment is gone; its promise can never be observed. The Deferred's handle belonged
    // to that environment too, so it is leaked rather than destroyed off its thread.
    msg->deferred = nullptr;
    delete msg;
  }
}

void Bridge::call_js(Napi::Env env, Napi::Function, std::nullptr_t*, Message* msg) {
  std::unique_ptr<Message> owned(msg);
  if (env == nullptr) return;  // tsfn finalizing: nothing to settle
  std::unique_ptr<Napi::Promise::Deferred> deferred(msg->deferred);
  Bridge& b = *msg->bridge;
  if (--b.pending_ == 0) b.tsfn_.Unref(env);
  Napi::HandleScope scope(env);
  if (msg->failed) {
    deferred->Reject(Napi::Error::New(env, msg->error).Value());
    return;
  }
  try {
    deferred->Resolve(msg->settle ? msg->settle(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred->Reject(e.Value());
  } catch (const std::exception& e) {
    deferred->Reject(Napi::Error::New(env, e.what()).Value());
  }
}

void Bridge::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!alive_) return;
  alive_ = false;
  tsfn_.Release();
}

}  // namespace ks::napi
