#include "kintsugi/device.h"

#include <cstdlib>
#include <stdexcept>
#include "kintsugi/backend.h"

namespace ks {

Device parse_device(const std::string& text) {
  if (text == "cpu") return {DeviceType::CPU, 0};
  if (text == "cuda") return {DeviceType::CUDA, 0};
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8) {
    int index = 0;
    for (size_t i = 5; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') goto bad;
      index = index * 10 + (text[i] - '0');
    }
    return {DeviceType::CUDA, index};
  }
bad:
  throw std::invalid_argument("device: expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" + text + "\"");
}

std::string to_string(const Device& d) {
  return d.type == DeviceType::CPU ? std::string("cpu") : "cuda:" + std::to_string(d.index);
}

CudaStatus cuda_status() {
#if KS_WITH_CUDA
  static const CudaStatus status = cuda::status();
  return status;
#else
  CudaStatus s;
  s.compiled = false;
  s.reason = "this binary was built without the CUDA backend (CPU-only source build)";
  return s;
#endif
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out{cpu::device_info()};
#if KS_WITH_CUDA
  if (cuda_status().device_count > 0) {
    static const std::vector<DeviceInfo> gpus = cuda::devices();
    out.insert(out.end(), gpus.begin(), gpus.end());
  }
#endif
  return out;
}

void check_device(const Device& d) {
  if (d.type == DeviceType::CPU) {
    if (d.index != 0) throw std::invalid_argument("device: there is one CPU device, \"cpu\"");
    return;
  }
  const CudaStatus s = cuda_status();
  if (s.device_count == 0) throw std::runtime_error("device " + to_string(d) + " is not available: " + s.reason);
  if (d.index < 0 || d.index >= s.device_count)
    throw std::invalid_argument("device: " + to_string(d) + " does not exist; this machine has " +
                                std::to_string(s.device_count) +
                                " CUDA device(s), cuda:0 .. cuda:" + std::to_string(s.device_count - 1));
}

Allocator& allocator_for(const Device& d) {
#if KS_WITH_CUDA
  if (d.is_cuda()) return cuda::allocator(d.index);
#endif
  if (d.is_cuda()) throw std::runtime_error("allocator: no CUDA backend in this binary");
  return cpu::allocator();
}

}  // namespace ks
