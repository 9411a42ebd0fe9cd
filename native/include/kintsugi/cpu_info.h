// The CPU backend's configuration and counters for buildInfo(), the benchmarks and the addon's
// load-time checks: which instruction-set variant of the kernels runs (native/cpu/isa.cpp), the thread
// pool's size and how busy it was (native/cpu/parallel.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace ks::cpu {

// "sse" (the portable baseline: SSE2 on x86-64, NEON on arm64), "avx2" or "avx512".
const char* cpu_isa_name();
// The variants this processor can run, lowest first ("sse,avx2,avx512" on an AVX-512 machine).
std::string cpu_isa_supported();
// Empty, or why KINTSUGI_CPU_ISA could not be honoured (an unknown name, or a level this processor
// lacks): the addon refuses to load with this message rather than run something not asked for.
const std::string& cpu_isa_error();

// The CPU thread pool's size (KINTSUGI_CPU_THREADS, else the hardware threads), and empty or why
// KINTSUGI_CPU_THREADS was refused (native/cpu/parallel.cpp).
int num_threads();
const std::string& cpu_threads_error();

// Since the process started: wall time spent inside parallel jobs (on the calling thread), the time
// all threads spent running chunks of them, and the job count. A step's idle thread-time is then
// threads * wall - busy - (wall - parallel): outside parallel jobs one thread works and the rest wait.
struct PoolStats {
  int64_t parallel_ns = 0, busy_ns = 0, jobs = 0;
};
PoolStats cpu_pool_stats();

}  // namespace ks::cpu
