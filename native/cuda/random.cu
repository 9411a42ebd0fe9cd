// The GPU side of the counter-based generator: one thread per Philox block (4 values), the same
// block function as the CPU (kintsugi/philox.h), so streams match bit for bit. A full block is one
// 16-byte store when `out` is 16-byte aligned (whole tensors: the allocator's blocks are 512-byte
// aligned); a view that starts mid-block (an offset into a tensor) takes four scalar stores instead:
// a misaligned float4 store is a fault on the GPU.
#include <cstdint>
#include "common.cuh"
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"

namespace ks::cuda {
namespace {

enum class Kind { Bits, Uniform, Normal };

template <Kind kind, bool kAligned>
__global__ void random_kernel(float* out, int64_t n, RngKey key, float low, float width) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    float v[4];
    if constexpr (kind == Kind::Normal) {
      philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(b), v);
    } else {
      const Philox4 w = philox_block(key.seed, key.offset, key.stream, static_cast<uint64_t>(b));
      for (int j = 0; j < 4; ++j)
        v[j] = kind == Kind::Bits ? __uint_as_float(w.v[j]) : low + width * u32_to_unit(w.v[j]);
    }
    const int64_t base = 4 * b;
    if (kAligned && base + 4 <= n) {
      reinterpret_cast<float4*>(out)[b] = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      for (int64_t j = 0; j < 4 && base + j < n; ++j) out[base + j] = v[j];
    }
  }
}

template <Kind kind>
void launch(float* out, int64_t n, RngKey key, float low, float width) {
  if (reinterpret_cast<uintptr_t>(out) % 16 == 0)
    random_kernel<kind, true><<<grid_for((n + 3) / 4), 256, 0, stream()>>>(out, n, key, low, width);
  else
    random_kernel<kind, false><<<grid_for((n + 3) / 4), 256, 0, stream()>>>(out, n, key, low, width);
  KS_CUDA_LAUNCHED(random);
}

}  // namespace

void random_bits(uint32_t* out, int64_t n, RngKey key) {
  launch<Kind::Bits>(reinterpret_cast<float*>(out), n, key, 0.f, 0.f);
}

void uniform(float* out, int64_t n, float low, float high, RngKey key) {
  launch<Kind::Uniform>(out, n, key, low, high - low);
}

void randn(float* out, int64_t n, RngKey key) { launch<Kind::Normal>(out, n, key, 0.f, 0.f); }

}  // namespace ks::cuda
