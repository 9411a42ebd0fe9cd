// CUDA devices, the per-thread stream, and host transfers.
#include <cstring>
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {
thread_local cudaStream_t t_stream = nullptr;
thread_local int t_multiprocessors = 0;
thread_local int t_compute_capability = 0;
}  // namespace

CudaStatus status() {
  CudaStatus s;
  s.compiled = true;
  cudaRuntimeGetVersion(&s.runtime_version);
  cudaDriverGetVersion(&s.driver_version);  // 0 when no driver is installed
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  s.code = static_cast<int>(err);
  if (err == cudaSuccess && count > 0) {
    s.device_count = count;
    return s;
  }
  cudaGetLastError();  // clear, so later calls do not report this again
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    s.reason = "no CUDA device: the driver is present but reports no GPU";
  } else if (err == cudaErrorInsufficientDriver) {
    s.reason = s.driver_version == 0
                   ? "no CUDA driver: libcuda could not be loaded (no NVIDIA driver on this machine)"
                   : "CUDA driver too old: it supports CUDA " + std::to_string(s.driver_version / 1000) + "." +
                         std::to_string(s.driver_version % 1000 / 10) + ", this binary needs " +
                         std::to_string(s.runtime_version / 1000) + "." + std::to_string(s.runtime_version % 1000 / 10);
  } else {
    s.reason = std::string("CUDA unavailable: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  }
  return s;
}

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p;
    KS_CUDA_CHECK(cudaGetDeviceProperties(&p, i));
    DeviceInfo info;
    info.device = {DeviceType::CUDA, i};
    info.name = p.name;
    info.cc_major = p.major;
    info.cc_minor = p.minor;
    info.total_memory = p.totalGlobalMem;
    info.multiprocessors = p.multiProcessorCount;
    out.push_back(info);
  }
  return out;
}

void thread_init(int index) {
  KS_CUDA_CHECK(cudaSetDevice(index));
  KS_CUDA_CHECK(cudaStreamCreateWithFlags(&t_stream, cudaStreamNonBlocking));
  bind_stream(index, t_stream);  // a second stream on this device throws (stream_rule.h)
  KS_CUDA_CHECK(cudaDeviceGetAttribute(&t_multiprocessors, cudaDevAttrMultiProcessorCount, index));
  int major = 0, minor = 0;
  KS_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index));
  KS_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index));
  t_compute_capability = major * 10 + minor;
}

cudaStream_t stream() {
  if (!t_stream) throw std::logic_error("CUDA work was issued outside a CUDA device queue");
  return t_stream;
}

cudaStream_t thread_stream() { return t_stream; }

int multiprocessors() { return t_multiprocessors > 0 ? t_multiprocessors : 1; }
int compute_capability() { return t_compute_capability; }

void synchronize() { KS_CUDA_CHECK(cudaStreamSynchronize(stream())); }

void upload(void* dst, const void* src, size_t bytes) {
  KS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
  KS_CUDA_CHECK(cudaStreamSynchronize(stream()));  // the host buffer may be freed right after
}

void download(void* dst, const void* src, size_t bytes) {
  KS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  KS_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void memset_bytes(void* dst, unsigned char value, size_t bytes) {
  KS_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, stream()));
}

}  // namespace ks::cuda
