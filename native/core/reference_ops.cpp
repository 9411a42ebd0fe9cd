// Queues the double-precision reference (kintsugi/reference.h) on the CPU worker, like any other work.
#include "kintsugi/queue.h"
#include "kintsugi/reference.h"

namespace ks {
namespace {

void run_on_cpu(std::function<RefArrays()> work, RefDone done) {
  auto result = std::make_shared<RefArrays>();
  Task task;
  task.run = [work = std::move(work), result] { *result = work(); };
  task.done = [result, done = std::move(done)](const std::string* error) { done(std::move(*result), error); };
  submit(Device{DeviceType::CPU, 0}, std::move(task));
}

}  // namespace

void reference_op(const std::string& op, const RefArgs& args, RefDone done) {
  run_on_cpu(cpu::reference_plan(op, args), std::move(done));
}

void reference_unet(const UNetConfig& config, const RefArgs& args, RefDone done) {
  run_on_cpu(cpu::reference_unet_plan(config, args), std::move(done));
}

}  // namespace ks
