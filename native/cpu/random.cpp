// The CPU side of the counter-based generator: block b of a draw is computed independently of every
// other, so the work splits over threads with no shared state and no dependence on the split.
#include <algorithm>
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"
#include "parallel.h"

namespace ks::cpu {
namespace {
constexpr int64_t kBlocksPerChunk = 1 << 14;

template <class PerBlock>
void for_blocks(int64_t n, PerBlock per_block) {
  const int64_t blocks = (n + 3) / 4;
  parallel_for(blocks, kBlocksPerChunk, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) per_block(b, std::min<int64_t>(4, n - 4 * b));
  });
}
}  // namespace

void random_bits(uint32_t* out, int64_t n, RngKey key) {
  for_blocks(n, [&](int64_t b, int64_t count) {
    const Philox4 w = philox_block(key.seed, key.offset, key.stream, static_cast<uint64_t>(b));
    for (int64_t j = 0; j < count; ++j) out[4 * b + j] = w.v[j];
  });
}

void uniform(float* out, int64_t n, float low, float high, RngKey key) {
  const float width = high - low;
  for_blocks(n, [&](int64_t b, int64_t count) {
    const Philox4 w = philox_block(key.seed, key.offset, key.stream, static_cast<uint64_t>(b));
    for (int64_t j = 0; j < count; ++j) out[4 * b + j] = low + width * u32_to_unit(w.v[j]);
  });
}

void randn(float* out, int64_t n, RngKey key) {
  for_blocks(n, [&](int64_t b, int64_t count) {
    float z[4];
    philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(b), z);
    for (int64_t j = 0; j < count; ++j) out[4 * b + j] = z[j];
  });
}

}  // namespace ks::cpu
