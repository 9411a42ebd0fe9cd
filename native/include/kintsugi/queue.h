// One worker thread per device runs that device's work in submission order (for CUDA: on one stream),
// so the JS thread never waits on computation, and ops queued one after another see each other's
// results without any synchronisation in JavaScript.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "kintsugi/device.h"
#include "kintsugi/tensor.h"

namespace ks {

struct Task {
  std::vector<std::shared_ptr<Storage>> reads;   // a failed input fails this task too
  std::vector<std::shared_ptr<Storage>> writes;  // marked failed when this task fails
  std::function<void()> run;                     // on the worker thread
  // Always called once on the worker thread after run (error == nullptr) or its failure.
  std::function<void(const std::string* error)> done;
};

void submit(const Device& device, Task task);

// Number of tasks submitted and not yet finished, over all devices (for diagnostics and tests).
size_t tasks_pending();

}  // namespace ks
