// Linear: y[n, o] = b[o] + sum_i x[n, i] W[o, i], weight [out, in].
#pragma once
#include <cstdint>

namespace ks::cpu {

template <class T>
void linear_forward(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      T acc = b ? b[o] : T(0);
      for (int64_t i = 0; i < in; ++i) acc += x[r * in + i] * w[o * in + i];
      y[r * out + o] = acc;
    }
}

// gw, gb accumulate; gx (if not null) is overwritten.
template <class T>
void linear_backward(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, int64_t n, int64_t in, int64_t out) {
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t r = 0; r < n; ++r) {
      const T g = gy[r * out + o];
      if (gb) gb[o] += g;
      for (int64_t i = 0; i < in; ++i) gw[o * in + i] += g * x[r * in + i];
    }
  }
  if (!gx) return;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < in; ++i) {
      T acc = 0;
      for (int64_t o = 0; o < out; ++o) acc += gy[r * out + o] * w[o * in + i];
      gx[r * in + i] = acc;
    }
}

}  // namespace ks::cpu
