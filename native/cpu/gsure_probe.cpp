// The Hutchinson probe shifts of GSURE (kintsugi/gsure.h): x̄_t ± eps b for every probe row, the
// probes drawn here (element idx of randn's draw of the key) rather than stored.
#include <algorithm>
#include <cmath>
#include "kintsugi/backend.h"
#include "kintsugi/philox.h"
#include "parallel.h"

namespace ks::cpu {

void gsure_probe(const float* xt, int64_t n, int64_t per_sample, int probes, float eps, RngKey key, float* plus,
                 float* minus) {
  const int64_t total = n * probes * per_sample, blocks = (total + 3) / 4;
  parallel_for(blocks, 1 << 12, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      float z[4];
      philox_normals4(key.seed, key.offset, key.stream, static_cast<uint64_t>(q), z);
      for (int64_t j = 0, idx = 4 * q; j < 4 && idx < total; ++j, ++idx) {
        const int64_t row = idx / per_sample, i = idx % per_sample;
        const float x = xt[(row / probes) * per_sample + i];
        plus[idx] = std::fma(eps, z[j], x);
        if (minus) minus[idx] = std::fma(-eps, z[j], x);
      }
    }
  });
}

}  // namespace ks::cpu
