// Devices: what a tensor lives on, and what this process can see.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ks {

enum class DeviceType { CPU = 0, CUDA = 1 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_cuda() const { return type == DeviceType::CUDA; }
};

// "cpu", "cuda", "cuda:N" -> Device; throws std::invalid_argument naming the text otherwise.
Device parse_device(const std::string& text);
std::string to_string(const Device& d);

struct DeviceInfo {
  Device device;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability (0 for the CPU)
  uint64_t total_memory = 0;       // bytes
  int multiprocessors = 0;         // SMs, or hardware threads for the CPU
};

// Why CUDA is or is not usable. `code` is the cudaError_t of cudaGetDeviceCount (0 on success);
// 100 means no device, 35 a driver that is missing or older than the runtime we link.
struct CudaStatus {
  bool compiled = false;  // was this binary built with the CUDA backend
  int device_count = 0;
  int code = 0;
  int runtime_version = 0, driver_version = 0;
  std::string reason;  // empty when device_count > 0
};

CudaStatus cuda_status();                // computed once, cached
std::vector<DeviceInfo> list_devices();  // the CPU first, then every CUDA device
void check_device(const Device& d);      // throws when d does not exist in this process

}  // namespace ks
