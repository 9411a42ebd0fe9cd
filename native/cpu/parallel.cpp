#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ks::cpu {
namespace {

// One parallel job. Workers hold it by shared_ptr, so one that wakes late still finds it alive; it
// then claims no chunk (all are taken) and never touches the caller's function.
struct Job {
  const std::function<void(int64_t)>* fn;
  int64_t chunks;
  std::atomic<int64_t> next{0};
  int64_t done = 0;  // guarded by Pool::mu_
};

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& fn) {
    // Jobs come from device worker threads; a second caller waits for the first job to finish.
    std::lock_guard<std::mutex> one_job(job_mu_);
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->chunks = chunks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = job;
      ++generation_;
    }
    cv_.notify_all();
    work(*job);
    std::unique_lock<std::mutex> lock(mu_);
    finished_.wait(lock, [&] { return job->done == job->chunks; });
    current_.reset();
  }

 private:
  void work(Job& job) {
    int64_t mine = 0;
    for (int64_t c; (c = job.next.fetch_add(1)) < job.chunks; ++mine) (*job.fn)(c);
    if (mine) {
      std::lock_guard<std::mutex> lock(mu_);
      job.done += mine;
      if (job.done == job.chunks) finished_.notify_all();
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        job = current_;
      }
      if (job) work(*job);
    }
  }

  std::mutex job_mu_, mu_;
  std::condition_variable cv_, finished_;
  std::shared_ptr<Job> current_;
  uint64_t generation_ = 0;
  std::vector<std::thread> threads_;
};

Pool& pool() {
  // Leaked like the device queues: its threads must never be joined from a static destructor.
  static Pool* p = new Pool(num_threads() - 1);
  return *p;
}

}  // namespace

int num_threads() {
  static const int n = static_cast<int>(std::max(1u, std::min(64u, std::thread::hardware_concurrency())));
  return n;
}

void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  const std::function<void(int64_t)> job = [&](int64_t c) { body(c, c * grain, std::min(n, (c + 1) * grain)); };
  if (chunks == 1 || num_threads() == 1) {
    for (int64_t c = 0; c < chunks; ++c) job(c);
    return;
  }
  pool().run(chunks, job);
}

}  // namespace ks::cpu
