#include "kintsugi/tensor.h"

#include <cstring>
#include <limits>
#include <stdexcept>
#include "kintsugi/allocator.h"
#include "kintsugi/backend.h"
#include "kintsugi/queue.h"

namespace ks {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  return n;
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

void check_shape(const Shape& shape, const char* what) {
  if (shape.empty() || shape.size() > 8)
    throw std::invalid_argument(std::string(what) + ": a shape needs 1 to 8 dimensions, got " + shape_string(shape));
  // Elements are addressed with int64 and sizes in bytes must fit too: cap at 2^40 elements.
  const int64_t cap = int64_t(1) << 40;
  int64_t n = 1;
  for (int64_t e : shape) {
    if (e <= 0)
      throw std::invalid_argument(std::string(what) + ": every dimension must be a positive integer, got " +
                                  shape_string(shape));
    if (e > cap || n > cap / e)
      throw std::invalid_argument(std::string(what) + ": shape " + shape_string(shape) + " is too large");
    n *= e;
  }
}

Storage::Storage(Device device, size_t bytes, bool guarded) : device_(device), bytes_(bytes), guarded_(guarded) {
  data_ = allocator_for(device).allocate(bytes + (guarded ? kGuardBytes : 0), &granted_);
}

Storage::~Storage() { allocator_for(device_).release(data_, granted_); }

void Storage::set_error(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_) error_ = message;
}

std::optional<std::string> Storage::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Tensor::Tensor(Device device, Shape s, bool guarded) : shape(std::move(s)) {
  check_shape(shape, "tensor");
  check_device(device);
  storage = std::make_shared<Storage>(device, static_cast<size_t>(numel()) * sizeof(float), guarded);
  if (guarded) {
    // Queued, not done here: cached device memory may still be in use by work queued earlier.
    Task task;
    task.writes = {storage};
    task.run = [s = storage] {
      auto* guard = static_cast<unsigned char*>(s->data()) + s->bytes();
#if KS_WITH_CUDA
      if (s->device().is_cuda()) return cuda::memset_bytes(guard, kGuardByte, kGuardBytes);
#endif
      std::memset(guard, kGuardByte, kGuardBytes);
    };
    submit(device, std::move(task));
  }
}

int64_t Tensor::numel() const { return numel_of(shape); }

}  // namespace ks
