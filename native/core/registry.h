// The op registry (inside native/core). Each op is declared once:
//   - its row, KS_OP(var, "name", cpu::fn, KS_CUDA_FN(fn)): the name and the two backend functions of
//     one signature (the CUDA one is null in a CPU-only build, or where an op has no kernel yet);
//   - its checks, written with Check: they name the arguments in errors, collect the storages read and
//     written and the device, and compute the launch arguments;
//   - one dispatch(row, check, args...) that queues the backend function of the device on its worker.
// Ops called by name from JavaScript (the network ops and every op added since the registry) use
// KS_GENERIC_OP, whose check receives an OpCall (attributes and tensor lists) instead of typed
// arguments: such an op needs no N-API or TypeScript declaration of its own.
#pragma once
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include "kintsugi/queue.h"
#include "kintsugi/registry.h"
#include "kintsugi/tensor.h"

namespace ks {

// One row: a name and the backend function of each device kind, of the same signature Fn.
template <class Fn>
struct Op {
  const char* name;
  Fn* cpu;
  Fn* cuda;
};

#if KS_WITH_CUDA
#define KS_CUDA_FN(fn) (&::ks::cuda::fn)
#else
#define KS_CUDA_FN(fn) nullptr
#endif

namespace registry {
void add(const char* name, bool cuda, void (*generic)(const OpCall&));
template <class Fn>
Op<Fn> row(Op<Fn> op, void (*generic)(const OpCall&) = nullptr) {
  add(op.name, op.cuda != nullptr, generic);
  return op;
}
}  // namespace registry

// Declares the row `var` and registers its name (at load time, before any call can reach it).
#define KS_OP(var, name, cpu_fn, cuda_fn)                        \
  const ::ks::Op<std::remove_pointer_t<decltype(&cpu_fn)>> var = \
      ::ks::registry::row<std::remove_pointer_t<decltype(&cpu_fn)>>({name, &cpu_fn, cuda_fn})

// A row reachable by name: `entry` (void(const OpCall&)) checks the call and dispatches `var`.
#define KS_GENERIC_OP(var, name, cpu_fn, cuda_fn, entry)         \
  void entry(const ::ks::OpCall&);                               \
  const ::ks::Op<std::remove_pointer_t<decltype(&cpu_fn)>> var = \
      ::ks::registry::row<std::remove_pointer_t<decltype(&cpu_fn)>>({name, &cpu_fn, cuda_fn}, &entry)

// The argument checks every op shares. Errors read "<op>: <argument> <what was expected>, got <what
// was given>". The first tensor seen fixes the device; every later one must be on it.
class Check {
 public:
  explicit Check(const char* op) : op_(op) {}
  const char* op() const { return op_; }

  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument(std::string(op_) + ": " + message);
  }

  // A live tensor the op reads / writes (its storage orders the task after earlier work on it).
  const Tensor& in(const Tensor& t, const char* arg) { return use(t, arg, reads_); }
  const Tensor& out(const Tensor& t, const char* arg) { return use(t, arg, writes_); }
  // A live tensor that is neither read nor written (only its shape matters).
  const Tensor& alive(const Tensor& t, const char* arg) const {
    if (!t.storage) fail(std::string(arg) + " is disposed");
    return t;
  }

  void shape(const Tensor& t, const Shape& want, const char* arg) const {
    if (t.shape != want)
      fail(std::string(arg) + " must have shape " + shape_string(want) + ", got " + shape_string(t.shape));
  }
  void same_shape(const Tensor& ref, const char* ref_arg, const Tensor& t, const char* arg) const {
    if (t.shape != ref.shape)
      fail(std::string(arg) + " must have the shape of " + ref_arg + ", " + shape_string(ref.shape) + ", got " +
           shape_string(t.shape));
  }
  void image(const Tensor& t, const char* arg) const {
    if (t.shape.size() != 4) fail(std::string(arg) + " must be [n, c, h, w], got shape " + shape_string(t.shape));
  }
  void one_element(const Tensor& t, const char* arg) const {
    if (t.numel() != 1) fail(std::string(arg) + " must have one element, got shape " + shape_string(t.shape));
  }
  void distinct(const Tensor& a, const char* a_arg, const Tensor& b, const char* b_arg) const {
    if (a.storage == b.storage) fail(std::string(a_arg) + " must not alias " + b_arg);
  }

  const Device& device() const {
    if (!has_device_) fail("needs at least one tensor");
    return device_;
  }
  std::vector<std::shared_ptr<Storage>>& reads() { return reads_; }
  std::vector<std::shared_ptr<Storage>>& writes() { return writes_; }

 private:
  const Tensor& use(const Tensor& t, const char* arg, std::vector<std::shared_ptr<Storage>>& list) {
    alive(t, arg);
    if (!has_device_) {
      device_ = t.device();
      has_device_ = true;
    } else if (t.device() != device_) {
      fail(std::string(arg) + " must be on " + to_string(device_) + ", got " + to_string(t.device()));
    }
    list.push_back(t.storage);
    return t;
  }

  const char* op_;
  Device device_{};
  bool has_device_ = false;
  std::vector<std::shared_ptr<Storage>> reads_, writes_;
};

// The backend function of `op` for the checked device, or a clear error when it has none.
template <class Fn>
Fn* backend_of(const Op<Fn>& op, const Device& device) {
  if (!device.is_cuda()) return op.cpu;
#if KS_WITH_CUDA
  if (!op.cuda) throw std::invalid_argument(std::string(op.name) + ": has no CUDA function yet (supports() tells)");
  return op.cuda;
#else
  throw std::runtime_error(std::string(op.name) + ": this binary has no CUDA backend");
#endif
}

// Queues `call(fn)` on the checked device's worker, fn being the op's backend function there; the task
// runs after earlier work on what it reads and writes, and a failure poisons what it writes.
template <class Fn, class Call>
void dispatch_call(const Op<Fn>& op, Check& check, Call call) {
  Fn* fn = backend_of(op, check.device());
  Task task;
  task.reads = std::move(check.reads());
  task.writes = std::move(check.writes());
  task.run = [fn, call] { call(fn); };
  submit(check.device(), std::move(task));
}

// Work whose backend is already bound (a UNet engine made for the device): queued like dispatch's.
inline void dispatch_bound(Check& check, std::function<void()> run) {
  Task task;
  task.reads = std::move(check.reads());
  task.writes = std::move(check.writes());
  task.run = std::move(run);
  submit(check.device(), std::move(task));
}

// The common case: the launch arguments are copied into the task and passed to the backend function.
template <class Fn, class... Args>
void dispatch(const Op<Fn>& op, Check& check, Args... args) {
  dispatch_call(op, check, [args...](Fn* fn) { fn(args...); });
}

// Integer attribute `key` of a call by name, checked to be a whole number in [lo, hi].
int64_t attr(const OpCall& call, const char* op, const char* key, int64_t lo = 0, int64_t hi = int64_t(1) << 50);
// The inputs and outputs of a call by name, checked for count and element count and added to `check`
// (outputs may be empty where `optional` says so; their pointer is then null).
struct CallTensors {
  std::vector<const float*> in;
  std::vector<float*> out;
};
CallTensors call_tensors(Check& check, const OpCall& call, const std::vector<int64_t>& in_sizes,
                         const std::vector<int64_t>& out_sizes, const std::vector<bool>& optional = {});

}  // namespace ks
