#include "kintsugi/queue.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include "kintsugi/backend.h"

namespace ks {
namespace {

std::atomic<size_t> g_pending{0};

class DeviceQueue {
 public:
  explicit DeviceQueue(Device device) : device_(device), thread_([this] { loop(); }) {}

  void push(Task task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
#if KS_WITH_CUDA
    std::string init_error;
    if (device_.is_cuda()) {
      try {
        cuda::thread_init(device_.index);
      } catch (const std::exception& e) {
        init_error = e.what();
      }
    }
#endif
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      std::optional<std::string> error;
#if KS_WITH_CUDA
      if (!init_error.empty()) error = init_error;
#endif
      for (const auto& s : task.reads)
        if (!error) error = s->error();
      if (!error) {
        try {
          if (task.run) task.run();
        } catch (const std::exception& e) {
          error = e.what();
        } catch (...) {
          error = "unknown native error";
        }
      }
      if (error)
        for (const auto& s : task.writes) s->set_error(*error);
      if (task.done) task.done(error ? &*error : nullptr);
      --g_pending;
    }
  }

  Device device_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::thread thread_;  // last: starts after the members it uses exist
};

DeviceQueue& queue_for(const Device& d) {
  static std::mutex mu;
  // Leaked on purpose: the threads must outlive every static destructor that could still
  // reference them at process exit (a joinable std::thread in a static would abort the process).
  static auto* queues = new std::map<std::pair<int, int>, DeviceQueue*>();
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(static_cast<int>(d.type), d.index);
  auto it = queues->find(key);
  if (it == queues->end()) it = queues->emplace(key, new DeviceQueue(d)).first;
  return *it->second;
}

}  // namespace

void submit(const Device& device, Task task) {
  check_device(device);
  ++g_pending;
  queue_for(device).push(std::move(task));
}

size_t tasks_pending() { return g_pending.load(); }

}  // namespace ks
