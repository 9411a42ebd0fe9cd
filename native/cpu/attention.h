// The core of single-head self-attention over the p = h*w positions of a feature map, on qkv from the
// 1x1 convolution ([n, 3c, p]: q, k, v channels in that order): A = softmax over keys of q^T k / sqrt(c),
// o = v A^T. The norm, the qkv and proj convolutions and the residual belong to the block around it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>
#include "parallel.h"

namespace ks::cpu {

// The float path (attention.cpp): the products as GEMMs.
void attention_forward_f32(const float* qkv, float* a, float* o, int64_t n, int64_t c, int64_t p);
void attention_backward_f32(const float* qkv, const float* a, const float* go, float* gqkv, int64_t n, int64_t c,
                            int64_t p);

// a: [n, p, p] attention weights (row i: query i over keys j), kept for backward; o: [n, c, p].
template <class T>
void attention_forward(const T* qkv, T* a, T* o, int64_t n, int64_t c, int64_t p) {
  if constexpr (std::is_same_v<T, float>) return attention_forward_f32(qkv, a, o, n, c, p);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c));
  parallel_for(n * p, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> row(static_cast<size_t>(p));
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t b = job / p, i = job % p;
      const T* q = qkv + b * 3 * c * p;
      const T* k = q + c * p;
      double mx = -INFINITY;
      for (int64_t j = 0; j < p; ++j) {
        double s = 0;
        for (int64_t ch = 0; ch < c; ++ch) s += static_cast<double>(q[ch * p + i]) * k[ch * p + j];
        row[j] = s * scale;
        mx = std::max(mx, row[j]);
      }
      double z = 0;
      for (int64_t j = 0; j < p; ++j) z += (row[j] = std::exp(row[j] - mx));
      T* ai = a + (b * p + i) * p;
      for (int64_t j = 0; j < p; ++j) ai[j] = static_cast<T>(row[j] / z);
    }
  });
  parallel_for(n * c, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t b = job / c, ch = job % c;
      const T* v = qkv + (b * 3 * c + 2 * c + ch) * p;
      const T* ab = a + b * p * p;
      T* out = o + job * p;
      for (int64_t i = 0; i < p; ++i) {
        double s = 0;
        for (int64_t j = 0; j < p; ++j) s += static_cast<double>(v[j]) * ab[i * p + j];
        out[i] = static_cast<T>(s);
      }
    }
  });
}

// gqkv = dL/dqkv (overwritten) from go = dL/do.
template <class T>
void attention_backward(const T* qkv, const T* a, const T* go, T* gqkv, int64_t n, int64_t c, int64_t p) {
  if constexpr (std::is_same_v<T, float>) return attention_backward_f32(qkv, a, go, gqkv, n, c, p);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c));
  parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> gs(static_cast<size_t>(p * p));
    for (int64_t b = lo; b < hi; ++b) {
      const T* q = qkv + b * 3 * c * p;
      const T* k = q + c * p;
      const T* v = k + c * p;
      const T* ab = a + b * p * p;
      const T* g = go + b * c * p;
      T* gq = gqkv + b * 3 * c * p;
      T* gk = gq + c * p;
      T* gv = gk + c * p;
      // gv[ch, j] = sum_i g[ch, i] A[i, j]
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < p; ++j) {
          double s = 0;
          for (int64_t i = 0; i < p; ++i) s += static_cast<double>(g[ch * p + i]) * ab[i * p + j];
          gv[ch * p + j] = static_cast<T>(s);
        }
      // gA[i, j] = sum_ch g[ch, i] v[ch, j]; gS = A (gA - rowsum(gA A)), times the scale.
      for (int64_t i = 0; i < p; ++i) {
        double dot = 0;
        for (int64_t j = 0; j < p; ++j) {
          double s = 0;
          for (int64_t ch = 0; ch < c; ++ch) s += static_cast<double>(g[ch * p + i]) * v[ch * p + j];
          gs[i * p + j] = s;
          dot += s * ab[i * p + j];
        }
        for (int64_t j = 0; j < p; ++j) gs[i * p + j] = ab[i * p + j] * (gs[i * p + j] - dot) * scale;
      }
      // gq[ch, i] = sum_j gS[i, j] k[ch, j]; gk[ch, j] = sum_i gS[i, j] q[ch, i]
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t i = 0; i < p; ++i) {
          double s = 0;
          for (int64_t j = 0; j < p; ++j) s += gs[i * p + j] * k[ch * p + j];
          gq[ch * p + i] = static_cast<T>(s);
        }
        for (int64_t j = 0; j < p; ++j) {
          double s = 0;
          for (int64_t i = 0; i < p; ++i) s += gs[i * p + j] * q[ch * p + i];
          gk[ch * p + j] = static_cast<T>(s);
        }
      }
    }
  });
}

}  // namespace ks::cpu
