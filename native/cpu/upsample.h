// Nearest-neighbour upsampling by 2 over [planes, h, w].
#pragma once
#include <cstdint>

namespace ks::cpu {

template <class T>
void upsample2_forward(const T* x, T* y, int64_t planes, int64_t h, int64_t w) {
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < 2 * h; ++i)
      for (int64_t j = 0; j < 2 * w; ++j) y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
}

template <class T>
void upsample2_backward(const T* gy, T* gx, int64_t planes, int64_t h, int64_t w) {
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const T* g = gy + (p * 2 * h + 2 * i) * 2 * w + 2 * j;
        gx[(p * h + i) * w + j] = g[0] + g[1] + g[2 * w] + g[2 * w + 1];
      }
}

}  // namespace ks::cpu
