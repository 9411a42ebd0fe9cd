// SiLU(x) = x * sigmoid(x).
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace ks::cpu {

// The float path (elementwise.cpp): the selected instruction set's vector kernel, on the thread pool.
void silu_forward_f32(const float* x, float* y, int64_t n);
void silu_backward_f32(const float* x, const float* gy, float* gx, int64_t n);

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <class T>
void silu_forward(const T* x, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) return silu_forward_f32(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

// gx = gy * silu'(x), silu'(x) = s (1 + x (1 - s)); gx may alias gy.
template <class T>
void silu_backward(const T* x, const T* gy, T* gx, int64_t n) {
  if constexpr (std::is_same_v<T, float>) return silu_backward_f32(x, gy, gx, n);
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    gx[i] = gy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

}  // namespace ks::cpu
