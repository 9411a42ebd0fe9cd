// The UNet's queued operations: the engine of the device's backend, and forward, backward and tape
// release checked like every op (core/registry.h) before they reach the device's queue.
#include <memory>
#include <stdexcept>
#include "kintsugi/unet_engine.h"
#include "registry.h"

namespace ks {
namespace {

// Registered so supports("unet_forward", device) answers like any op; the engine is the dispatch.
const bool kRegistered = [] {
  for (const char* name : {"unet_forward", "unet_backward"}) registry::add(name, KS_WITH_CUDA != 0, nullptr);
  return true;
}();

// The UNet's messages name the argument first (lib/unet.ts passes them on as they are).
void need_device(const Check&, const Tensor& t, const Device& d, const char* arg) {
  if (t.device() != d)
    throw std::invalid_argument(std::string(arg) + ": expected a tensor on the UNet's device " + to_string(d) +
                                ", got " + to_string(t.device()));
}

void need_shape(const Tensor& t, const Shape& shape, const char* arg) {
  if (t.shape != shape)
    throw std::invalid_argument(std::string(arg) + ": expected shape " + shape_string(shape) + ", got " +
                                shape_string(t.shape));
}

void need_image(const Tensor& t, const char* arg) {
  if (t.shape.size() != 4)
    throw std::invalid_argument(std::string(arg) + ": expected [n, c, h, w], got " + shape_string(t.shape));
}

}  // namespace

std::unique_ptr<UNetEngine> make_unet_engine(const UNetConfig& config, const Device& device) {
  if (!device.is_cuda()) return cpu::make_unet_engine(config);
#if KS_WITH_CUDA
  return cuda::make_unet_engine(config);
#else
  throw std::invalid_argument("unet: this binary has no CUDA backend");
#endif
}

UNetHandle unet_create(const UNetConfig& config, const Device& device) {
  check_device(device);
  return UNetHandle{std::shared_ptr<UNetEngine>(make_unet_engine(config, device)),
                    device,
                    config.resolution,
                    config.in_channels,
                    config.out_channels,
                    unet_param_count(config),
                    4 * config.channels};
}

void unet_init_params(const UNetConfig& config, uint64_t seed, const Tensor& out) {
  Check c("unetInit");
  c.out(out, "out");
  if (out.device().is_cuda()) c.fail("out must be on the cpu (copy it to the GPU after)");
  if (out.numel() != unet_param_count(config))
    c.fail("out must have " + std::to_string(unet_param_count(config)) + " elements, got " +
           std::to_string(out.numel()));
  dispatch_bound(c, [config, seed, out] { unet_init(config, seed, out.data()); });
}

std::shared_ptr<UNetTape> unet_forward(const UNetHandle& h, const Tensor& params, const Tensor& x, const Tensor& t,
                                       const Tensor& out, bool keep, const Tensor* cond) {
  Check c("unet_forward");
  for (auto [tensor, name] : {std::pair{&params, "params"}, {&x, "x"}, {&t, "t"}, {&out, "out"}})
    need_device(c, c.alive(*tensor, name), h.device, name);
  c.in(params, "params");
  c.in(x, "x");
  c.in(t, "t");
  c.out(out, "out");
  need_image(x, "x");
  const int64_t n = x.shape[0];
  need_shape(params, {h.params}, "params");
  need_shape(x, {n, h.in_c, h.resolution, h.resolution}, "x");
  need_shape(t, {n}, "t");
  need_shape(out, {n, h.out_c, h.resolution, h.resolution}, "out");
  if (cond) {
    need_device(c, c.alive(*cond, "cond"), h.device, "cond");
    c.in(*cond, "cond");
    need_shape(*cond, {n, h.temb_c}, "cond");
  }
  const Tensor k = cond ? *cond : Tensor();
  auto tape = std::make_shared<UNetTape>();
  tape->device = h.device;
  dispatch_bound(c, [engine = h.engine, tape, params, x, t, out, n, keep, k] {
    tape->tape =
        engine->forward(params.data(), x.data(), t.data(), n, out.data(), keep, k.storage ? k.data() : nullptr);
  });
  return tape;
}

void unet_backward(const UNetHandle& h, const Tensor& params, const std::shared_ptr<UNetTape>& tape, const Tensor& gout,
                   const Tensor& grads, const Tensor* gx, const Tensor* gcond) {
  Check c("unet_backward");
  for (auto [tensor, name] : {std::pair{&params, "params"}, {&gout, "gout"}, {&grads, "grads"}})
    need_device(c, c.alive(*tensor, name), h.device, name);
  if (gx) need_device(c, c.alive(*gx, "gx"), h.device, "gx");
  c.in(params, "params");
  c.in(gout, "gout");
  c.out(grads, "grads");
  if (gx) c.out(*gx, "gx");
  need_shape(params, {h.params}, "params");
  need_shape(grads, {h.params}, "grads");
  need_image(gout, "gout");
  const int64_t n = gout.shape[0];
  need_shape(gout, {n, h.out_c, h.resolution, h.resolution}, "gout");
  if (gx) need_shape(*gx, {n, h.in_c, h.resolution, h.resolution}, "gx");
  if (gcond) {
    need_device(c, c.alive(*gcond, "gcond"), h.device, "gcond");
    c.out(*gcond, "gcond");
    need_shape(*gcond, {n, h.temb_c}, "gcond");
  }
  const Tensor g = gx ? *gx : Tensor();
  const Tensor gc = gcond ? *gcond : Tensor();
  dispatch_bound(c, [engine = h.engine, tape, params, gout, grads, g, gc, n] {
    if (!tape->tape) throw std::runtime_error("backward: the tape is empty (its forward failed or it was released)");
    if (engine->tape_batch(tape->tape.get()) != n)
      throw std::runtime_error("backward: gout has batch " + std::to_string(n) + ", the tape's forward had " +
                               std::to_string(engine->tape_batch(tape->tape.get())));
    engine->backward(params.data(), tape->tape.get(), gout.data(), grads.data(), g.storage ? g.data() : nullptr,
                     gc.storage ? gc.data() : nullptr);
  });
}

std::vector<StageEntry> unet_stage_entries(const UNetPlan& plan) {
  std::vector<StageEntry> e;
  const int C = plan.config.channels, R = plan.config.resolution;
  e.push_back({"time", "time", "time", 0, C, 4 * C});
  e.push_back({"conv_in", "conv_in", "conv", R, plan.config.in_channels, C});
  // The plan numbers each path's modules in order (unet_plan.cpp: "down.k", "mid.k", "up.k"); the mid
  // path is the three stages before the first one that reads a concat.
  size_t first_up = plan.stages.size();
  for (size_t i = 0; i < plan.stages.size(); ++i)
    if (plan.stages[i].concat_before) {
      first_up = i;
      break;
    }
  if (first_up < 3) throw std::logic_error("unet_stage_entries: no mid path in the plan");
  static const char* const kinds[] = {"res", "attn", "down", "up"};
  int down = 0, mid = 0, up = 0;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const UNetPlan::Stage& st = plan.stages[i];
    const char* section = i + 3 < first_up ? "down" : i < first_up ? "mid" : "up";
    int& k = i + 3 < first_up ? down : i < first_up ? mid : up;
    e.push_back({std::string(section) + "." + std::to_string(k++), section, kinds[static_cast<int>(st.kind)], st.size,
                 st.cin, st.cout});
  }
  e.push_back({"out", "out", "head", R, plan.out_norm.c, plan.config.out_channels});
  return e;
}

void unet_profile_stages(const UNetHandle& h, const Tensor& params, const Tensor& x, const Tensor& t, const Tensor& out,
                         const Tensor& gout, const Tensor& grads, const Tensor* gx,
                         std::function<void(StageTimes&&, const std::string*)> done) {
  Check c("unet_profile_stages");
  for (auto [tensor, name] :
       {std::pair{&params, "params"}, {&x, "x"}, {&t, "t"}, {&out, "out"}, {&gout, "gout"}, {&grads, "grads"}})
    need_device(c, c.alive(*tensor, name), h.device, name);
  if (gx) need_device(c, c.alive(*gx, "gx"), h.device, "gx");
  c.in(params, "params");
  c.in(x, "x");
  c.in(t, "t");
  c.in(gout, "gout");
  c.out(out, "out");
  c.out(grads, "grads");
  if (gx) c.out(*gx, "gx");
  need_image(x, "x");
  const int64_t n = x.shape[0];
  need_shape(params, {h.params}, "params");
  need_shape(grads, {h.params}, "grads");
  need_shape(x, {n, h.in_c, h.resolution, h.resolution}, "x");
  need_shape(t, {n}, "t");
  need_shape(out, {n, h.out_c, h.resolution, h.resolution}, "out");
  need_shape(gout, {n, h.out_c, h.resolution, h.resolution}, "gout");
  if (gx) need_shape(*gx, {n, h.in_c, h.resolution, h.resolution}, "gx");
  const Tensor g = gx ? *gx : Tensor();
  auto result = std::make_shared<StageTimes>();
  Task task;
  task.reads = std::move(c.reads());
  task.writes = std::move(c.writes());
  task.run = [engine = h.engine, result, params, x, t, out, gout, grads, g, n] {
    *result = engine->profile(params.data(), x.data(), t.data(), n, out.data(), gout.data(), grads.data(),
                              g.storage ? g.data() : nullptr);
  };
  task.done = [result, done = std::move(done)](const std::string* err) { done(std::move(*result), err); };
  submit(c.device(), std::move(task));
}

void unet_release_tape(const std::shared_ptr<UNetTape>& tape) {
  Task task;
  task.run = [tape] { tape->tape.reset(); };
  // On the tape's own queue: after every backward queued before, and in stream order on a GPU.
  submit(tape->device, std::move(task));
}

}  // namespace ks
