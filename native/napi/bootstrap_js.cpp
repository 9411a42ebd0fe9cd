// Glue for the bootstrap ops (kintsugi/bootstrap.h); lib/bootstrap/views.ts is the typed wrapper.
#include "bootstrap_js.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include "convert.h"
#include "kintsugi/bootstrap.h"
#include "tensor_wrap.h"

namespace ks::napi {
namespace {

using Info = const Napi::CallbackInfo&;

int64_t int_arg(const Napi::Value& v, const char* what) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d == std::floor(d) && std::fabs(d) <= 9007199254740991.0))
    throw std::invalid_argument(std::string(what) + ": expected an integer, got " + v.ToString().Utf8Value());
  return static_cast<int64_t>(d);
}

int factor_arg(const Napi::Value& v, const char* what) {
  const int64_t r = int_arg(v, what);
  if (r < 1 || r > 1024)
    throw std::invalid_argument(std::string(what) + ": expected an integer in [1, 1024], got " + std::to_string(r));
  return static_cast<int>(r);
}

PatchWindow window_arg(const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "uniform") return PatchWindow::uniform;
  if (s == "triangle") return PatchWindow::triangle;
  if (s == "hann") return PatchWindow::hann;
  throw std::invalid_argument("window: expected \"uniform\", \"triangle\" or \"hann\", got " +
                              v.ToString().Utf8Value());
}

const Tensor* optional_tensor(const Napi::Value& v, const char* what) {
  return v.IsNull() || v.IsUndefined() ? nullptr : &TensorWrap::unwrap(v, what);
}

// avgPool / upsampleNearest / highPass(x, r, out)
template <void (*Op)(const Tensor&, int, const Tensor&)>
void block_js(Info info) {
  guarded(info.Env(),
          [&] { Op(TensorWrap::unwrap(info[0], "x"), factor_arg(info[1], "r"), TensorWrap::unwrap(info[2], "out")); });
}

// patchExtract(x, size, stride, positions, out)
void patch_extract_js(Info info) {
  guarded(info.Env(), [&] {
    patch_extract(TensorWrap::unwrap(info[0], "x"), int_arg(info[1], "size"), int_arg(info[2], "stride"),
                  info[3].ToBoolean(), TensorWrap::unwrap(info[4], "out"));
  });
}

// patchOverlapAdd(patches, stride, window, out)
void patch_overlap_add_js(Info info) {
  guarded(info.Env(), [&] {
    patch_overlap_add(TensorWrap::unwrap(info[0], "patches"), int_arg(info[1], "stride"), window_arg(info[2]),
                      TensorWrap::unwrap(info[3], "out"));
  });
}

// residualAggregate(fLr | null, r, fPatch | null, stride, window, f0 | null, out)
void residual_aggregate_js(Info info) {
  guarded(info.Env(), [&] {
    const Tensor* f_lr = optional_tensor(info[0], "fLr");
    const Tensor* f_patch = optional_tensor(info[2], "fPatch");
    residual_aggregate(f_lr, f_lr ? factor_arg(info[1], "r") : 1, f_patch, f_patch ? int_arg(info[3], "stride") : 1,
                       f_patch ? window_arg(info[4]) : PatchWindow::uniform, optional_tensor(info[5], "f0"),
                       TensorWrap::unwrap(info[6], "out"));
  });
}

// concatChannels(a, b, out)
void concat_channels_js(Info info) {
  guarded(info.Env(), [&] {
    concat_channels(TensorWrap::unwrap(info[0], "a"), TensorWrap::unwrap(info[1], "b"),
                    TensorWrap::unwrap(info[2], "out"));
  });
}

// batchCenter(x, out)
void batch_center_js(Info info) {
  guarded(info.Env(), [&] { batch_center(TensorWrap::unwrap(info[0], "x"), TensorWrap::unwrap(info[1], "out")); });
}

}  // namespace

void define_bootstrap(Napi::Env env, Napi::Object exports) {
  exports.Set("avgPool", Napi::Function::New<block_js<avg_pool>>(env, "avgPool"));
  exports.Set("upsampleNearest", Napi::Function::New<block_js<upsample_nearest>>(env, "upsampleNearest"));
  exports.Set("highPass", Napi::Function::New<block_js<high_pass>>(env, "highPass"));
  exports.Set("patchExtract", Napi::Function::New<patch_extract_js>(env, "patchExtract"));
  exports.Set("patchOverlapAdd", Napi::Function::New<patch_overlap_add_js>(env, "patchOverlapAdd"));
  exports.Set("residualAggregate", Napi::Function::New<residual_aggregate_js>(env, "residualAggregate"));
  exports.Set("concatChannels", Napi::Function::New<concat_channels_js>(env, "concatChannels"));
  exports.Set("batchCenter", Napi::Function::New<batch_center_js>(env, "batchCenter"));
}

}  // namespace ks::napi
