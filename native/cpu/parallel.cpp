#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "kintsugi/cpu_info.h"

namespace ks::cpu {
namespace {

std::atomic<int64_t> g_parallel_ns{0}, g_busy_ns{0}, g_jobs{0};
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
    const int64_t t0 = now_ns();
    for (int64_t c; (c = job.next.fetch_add(1)) < job.chunks; ++mine) (*job.fn)(c);
    if (mine) {
      g_busy_ns += now_ns() - t0;
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

namespace {
struct Threads {
  int n = 1;
  std::string error;
};

// KINTSUGI_CPU_THREADS=N (1..64) sets the pool's size (tests compare thread counts; benchmarks pin
// one); unset, one thread per hardware thread.
Threads threads_from_env() {
  Threads t;
  t.n = static_cast<int>(std::max(1u, std::min(64u, std::thread::hardware_concurrency())));
  const char* env = std::getenv("KINTSUGI_CPU_THREADS");
  if (!env || !*env) return t;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end && *end == 0 && v >= 1 && v <= 64)
    t.n = static_cast<int>(v);
  else
    t.error = std::string("KINTSUGI_CPU_THREADS: expected an integer from 1 to 64, got \"") + env + "\"";
  return t;
}

const Threads& threads() {
  static const Threads t = threads_from_env();
  return t;
}
}  // namespace

int num_threads() { return threads().n; }
const std::string& cpu_threads_error() { return threads().error; }

void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  const std::function<void(int64_t)> job = [&](int64_t c) { body(c, c * grain, std::min(n, (c + 1) * grain)); };
  if (chunks == 1 || num_threads() == 1) {
    for (int64_t c = 0; c < chunks; ++c) job(c);
    return;
  }
  const int64_t t0 = now_ns();
  pool().run(chunks, job);
  g_parallel_ns += now_ns() - t0;
  ++g_jobs;
}

PoolStats cpu_pool_stats() { return {g_parallel_ns.load(), g_busy_ns.load(), g_jobs.load()}; }

}  // namespace ks::cpu
