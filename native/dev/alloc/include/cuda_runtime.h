// A stand-in for the CUDA runtime, just enough to compile native/cuda/allocator.cu on the host and run
// its out-of-memory paths without a GPU (test.cpp). Device memory is host memory under a byte limit the
// test sets; every call is logged so the test can check the order (synchronise before any free). As in
// CUDA, a failed cudaMalloc also sets the thread's last error, which cudaGetLastError returns and clears.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorLaunchFailure = 719 };
typedef struct CUstream_st* cudaStream_t;
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1 };

namespace fake_cuda {
struct State {
  size_t limit = 0;                       // bytes the fake device can hold
  size_t used = 0;                        // bytes cudaMalloc'd and not cudaFree'd
  cudaError_t sync_result = cudaSuccess;  // what the next cudaDeviceSynchronize returns (a kernel fault)
  cudaError_t last_error = cudaSuccess;
  std::vector<std::string> log;  // "malloc N ok|fail", "sync", "free N"
};
State& state();
}  // namespace fake_cuda

cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
