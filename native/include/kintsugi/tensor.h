// A float32 NCHW tensor: a shape and a shared, device-resident storage.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include "kintsugi/device.h"

namespace ks {

using Shape = std::vector<int64_t>;

// Bytes after the data of a guarded storage, filled with kGuardByte: the golden tests check that
// kernels never write past the end of their outputs.
constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuardByte = 0xA5;

class Storage {
 public:
  Storage(Device device, size_t bytes, bool guarded);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device() const { return device_; }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool guarded() const { return guarded_; }

  // Work runs asynchronously; a failure is recorded on the storages the failed task was writing,
  // and every later task that reads them fails with the same message (like a poisoned value).
  void set_error(const std::string& message);
  std::optional<std::string> error() const;

 private:
  Device device_;
  void* data_ = nullptr;
  size_t bytes_ = 0, granted_ = 0;
  bool guarded_ = false;
  mutable std::mutex mu_;
  std::optional<std::string> error_;
};

struct Tensor {
  std::shared_ptr<Storage> storage;
  Shape shape;

  Tensor() = default;
  Tensor(Device device, Shape shape, bool guarded = false);

  int64_t numel() const;
  float* data() const { return static_cast<float*>(storage->data()); }
  Device device() const { return storage->device(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * sizeof(float); }
};

int64_t numel_of(const Shape& shape);
std::string shape_string(const Shape& shape);
// Throws std::invalid_argument unless every extent is positive and the total fits memory sizes.
void check_shape(const Shape& shape, const char* what);

}  // namespace ks
