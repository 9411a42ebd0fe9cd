// Queues one op on its device's worker: the CPU function on a CPU device, the CUDA function on a CUDA
// device (a CPU-only build refuses CUDA devices here, with a clear error, before anything is queued).
// `reads` and `writes` order the task after the work on those storages and poison the writes if it fails.
#pragma once
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>
#include "kintsugi/queue.h"

namespace ks {

inline void submit_backend(const Device& device, std::vector<std::shared_ptr<Storage>> reads, std::vector<std::shared_ptr<Storage>> writes,
                           std::function<void()> cpu_fn, std::function<void()> cuda_fn) {
  Task task;
  task.reads = std::move(reads);
  task.writes = std::move(writes);
  if (device.is_cuda()) {
#if KS_WITH_CUDA
    task.run = std::move(cuda_fn);
#else
    (void)cuda_fn;
    throw std::runtime_error("this binary has no CUDA backend");
#endif
  } else {
    task.run = std::move(cpu_fn);
  }
  submit(device, std::move(task));
}

}  // namespace ks
