// Sinusoidal embedding of a per-sample float t: half = c / 2, f_i = exp(-ln(10000) i / half),
// emb = concat(sin(t f), cos(t f)). Computed in double: t reaches 999, where float phases lose digits.
#pragma once
#include <cmath>
#include <cstdint>

namespace ks::cpu {

template <class T>
void time_embedding(const T* t, T* emb, int64_t n, int64_t c) {
  const int64_t half = c / 2;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < half; ++i) {
      const double f = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      const double phase = static_cast<double>(t[r]) * f;
      emb[r * c + i] = static_cast<T>(std::sin(phase));
      emb[r * c + half + i] = static_cast<T>(std::cos(phase));
    }
}

}  // namespace ks::cpu
