// SiLU(x) = x * sigmoid(x).
#pragma once
#include <cmath>
#include <cstdint>

namespace ks::cpu {

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <class T>
void silu_forward(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

// gx = gy * silu'(x), silu'(x) = s (1 + x (1 - s)); gx may alias gy.
template <class T>
void silu_backward(const T* x, const T* gy, T* gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    gx[i] = gy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

}  // namespace ks::cpu
