// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
// generator, so element i of a draw is a pure function of (seed, offset, stream, i) and the CPU and
// every GPU thread produce the same stream without sharing state. One header for both backends.
#pragma once
#include <cstdint>
#include <cmath>

#if defined(__CUDACC__)
#define KS_HD __host__ __device__ __forceinline__
#else
#define KS_HD inline
#endif

namespace ks {

struct Philox4 {
  uint32_t v[4];
};

KS_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// The raw block function: 10 rounds over a 128-bit counter with a 64-bit key.
KS_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c.v[0], &hi0, &lo0);
    philox_mulhilo(0xCD9E8D57u, c.v[2], &hi1, &lo1);
    c = Philox4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
  }
  return c;
}

// The project's stream: block b of (seed, offset, stream) is philox(counter = (offset + b, stream),
// key = seed), each half of the counter a little-endian pair of words. A draw of n values uses blocks
// 0 .. ceil(n/4)-1, value j coming from word j % 4 of block j / 4, so a generator advances its offset
// by ceil(n/4) per draw.
KS_HD Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t stream, uint64_t block) {
  const uint64_t ctr = offset + block;
  Philox4 c{{static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32), static_cast<uint32_t>(stream),
             static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// [0, 1) with 24 random bits: exact in float, so both backends agree bit for bit.
KS_HD float u32_to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

// Box-Muller on a pair of words, giving two normals. Evaluated in double and rounded once, so the CPU
// and CUDA results differ at most by a float rounding of nearly equal doubles (in practice: identical).
KS_HD void box_muller(uint32_t a, uint32_t b, float* n0, float* n1) {
  const double u1 = (static_cast<double>(a >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]: log is finite
  const double u2 = static_cast<double>(b >> 8) * (1.0 / 16777216.0);
  const double r = sqrt(-2.0 * log(u1));
  const double theta = 6.283185307179586476925 * u2;
  *n0 = static_cast<float>(r * cos(theta));
  *n1 = static_cast<float>(r * sin(theta));
}

// Normals j = 4b .. 4b+3 of a draw come from block b: words (0,1) give j and j+1, words (2,3) the rest.
KS_HD void philox_normals4(uint64_t seed, uint64_t offset, uint64_t stream, uint64_t block, float out[4]) {
  const Philox4 w = philox_block(seed, offset, stream, block);
  box_muller(w.v[0], w.v[1], &out[0], &out[1]);
  box_muller(w.v[2], w.v[3], &out[2], &out[3]);
}

// Normal number idx of the draw (seed, offset, stream): the same value randn writes at index idx, for
// kernels that draw one element at a time (fused probe draws) yet must match a materialised randn.
KS_HD float philox_normal_at(uint64_t seed, uint64_t offset, uint64_t stream, uint64_t idx) {
  const Philox4 w = philox_block(seed, offset, stream, idx / 4);
  const int pair = static_cast<int>(idx & 2);
  float n0, n1;
  box_muller(w.v[pair], w.v[pair + 1], &n0, &n1);
  return (idx & 1) ? n1 : n0;
}

}  // namespace ks
