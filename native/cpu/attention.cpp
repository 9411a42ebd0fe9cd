// The float path of the attention core: the four products as GEMMs, parallel over the batch. The
// double path (gradient checks, PyTorch fixtures) stays the loops of attention.h.
#include <algorithm>
#include <cmath>
#include <vector>
#include "attention.h"
#include "gemm.h"

namespace ks::cpu {

void attention_forward_f32(const float* qkv, float* a, float* o, int64_t n, int64_t c, int64_t p) {
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c)));
  parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* q = qkv + b * 3 * c * p;
      const float* k = q + c * p;
      const float* v = k + c * p;
      float* ab = a + b * p * p;
      // S[i, j] = sum_ch q[ch, i] k[ch, j]
      sgemm(p, p, c, {q, 1, p}, {k, p, 1}, ab, p, false);
      for (int64_t i = 0; i < p; ++i) {
        float* row = ab + i * p;
        float mx = -INFINITY;
        for (int64_t j = 0; j < p; ++j) mx = std::max(mx, row[j] * scale);
        double z = 0;
        for (int64_t j = 0; j < p; ++j) z += (row[j] = std::exp(row[j] * scale - mx));
        const float inv = static_cast<float>(1.0 / z);
        for (int64_t j = 0; j < p; ++j) row[j] *= inv;
      }
      // o[ch, i] = sum_j v[ch, j] A[i, j]
      sgemm(c, p, p, {v, p, 1}, {ab, 1, p}, o + b * c * p, p, false);
    }
  });
}

void attention_backward_f32(const float* qkv, const float* a, const float* go, float* gqkv, int64_t n, int64_t c,
                            int64_t p) {
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c)));
  parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> gs;
    gs.resize(static_cast<size_t>(p * p));
    for (int64_t b = lo; b < hi; ++b) {
      const float* q = qkv + b * 3 * c * p;
      const float* k = q + c * p;
      const float* v = k + c * p;
      const float* ab = a + b * p * p;
      const float* g = go + b * c * p;
      float* gq = gqkv + b * 3 * c * p;
      float* gk = gq + c * p;
      float* gv = gk + c * p;
      sgemm(c, p, p, {g, p, 1}, {ab, p, 1}, gv, p, false);        // gv = g A
      sgemm(p, p, c, {g, 1, p}, {v, p, 1}, gs.data(), p, false);  // gA = g^T v
      for (int64_t i = 0; i < p; ++i) {
        float* row = gs.data() + i * p;
        const float* ar = ab + i * p;
        double dot = 0;
        for (int64_t j = 0; j < p; ++j) dot += static_cast<double>(row[j]) * ar[j];
        const float d = static_cast<float>(dot);
        for (int64_t j = 0; j < p; ++j) row[j] = ar[j] * (row[j] - d) * scale;
      }
      sgemm(c, p, p, {k, p, 1}, {gs.data(), 1, p}, gq, p, false);  // gq = k gS^T
      sgemm(c, p, p, {q, p, 1}, {gs.data(), p, 1}, gk, p, false);  // gk = q gS
    }
  });
}

}  // namespace ks::cpu
