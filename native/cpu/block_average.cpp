// Block averaging by k in its SVD basis (docs/corruption.md). Each k x k block, read row-major as
// a_0 .. a_{m-1} (m = k*k), is mapped to its Helmert coefficients, an orthonormal basis whose first
// vector is the normalised constant:
//   c_0 = (a_0 + ... + a_{m-1}) / k                       (singular value 1/k: the block mean is c_0 / k)
//   c_j = (a_0 + ... + a_{j-1} - j a_j) / sqrt(j (j + 1))  (j >= 1, singular value 0)
// both directions in O(m) per block with running sums. Coefficient j of block (bi, bj) of plane p is
// stored at [p, j, bi, bj] (plane-major), so coefficient 0 of every block, the observed part, is the
// low-resolution image at the start of each plane. With coefs == 1 only that first plane is stored
// (vt writes it, v reads it with the others taken as zero).
#include <cmath>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {

void block_average_vt(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs,
                      float scale) {
  const int64_t W = w * k, hw = h * w, m = int64_t(k) * k;
  parallel_for(planes * hw, 1024, [=](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t p = t / hw, bi = (t % hw) / w, bj = t % w;
      const float* blk = x + p * hw * m + bi * k * W + bj * k;
      float* o = out + p * hw * coefs + bi * w + bj;
      float prefix = 0;  // a_0 + ... + a_{j-1}
      for (int64_t j = 0; j < m; ++j) {
        const float a = blk[(j / k) * W + j % k];
        if (j > 0 && j < coefs) o[j * hw] = scale * (prefix - float(j) * a) / std::sqrt(float(j * (j + 1)));
        prefix += a;
      }
      o[0] = scale * prefix / float(k);
    }
  });
}

void block_average_v(const float* c, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs,
                     float scale) {
  const int64_t W = w * k, hw = h * w, m = int64_t(k) * k;
  parallel_for(planes * hw, 1024, [=](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t p = t / hw, bi = (t % hw) / w, bj = t % w;
      const float* cf = c + p * hw * coefs + bi * w + bj;
      float* blk = out + p * hw * m + bi * k * W + bj * k;
      const float mean = cf[0] / float(k);
      float suffix = 0;  // sum over j > i of c_j / sqrt(j (j + 1))
      for (int64_t i = m - 1; i >= 0; --i) {
        float a = mean + suffix;
        if (i > 0 && i < coefs) {
          const float ci = cf[i * hw] / std::sqrt(float(i * (i + 1)));
          a -= float(i) * ci;
          suffix += ci;
        }
        blk[(i / k) * W + i % k] = scale * a;
      }
    }
  });
}

}  // namespace ks::cpu
