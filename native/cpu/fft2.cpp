// Orthonormal 2-D DFT of planar complex images [n, 2, h, w] (docs/corruption.md): iterative radix-2
// FFTs along every row, then along every column, each scaled by 1 / sqrt(length), so the whole
// transform is unitary (an orthogonal map of the real and imaginary planes). Twiddles are computed in
// double and rounded once to float; each line is copied to a contiguous buffer in bit-reversed order,
// so out may alias x.
#include <cmath>
#include <vector>
#include "kintsugi/backend.h"
#include "parallel.h"

namespace ks::cpu {
namespace {

// One pass of 1-D FFTs of length len over lines of `count` per sample: line l of sample b starts at
// element b * 2 * plane + l * step and its elements are `stride` apart; imaginary parts are one plane on.
void fft_lines(const float* x, float* out, int64_t n, int64_t plane, int64_t count, int64_t step, int64_t stride,
               int64_t len, bool inverse) {
  int bits = 0;
  while ((int64_t(1) << bits) < len) ++bits;
  std::vector<float> cos_t(len / 2 + 1), sin_t(len / 2 + 1);
  const double pi = 3.14159265358979323846;
  for (int64_t j = 0; j < len / 2; ++j) {
    cos_t[j] = float(std::cos(2 * pi * double(j) / double(len)));
    sin_t[j] = float((inverse ? 1 : -1) * std::sin(2 * pi * double(j) / double(len)));
  }
  std::vector<int64_t> reversed(len);
  for (int64_t i = 0; i < len; ++i) {
    int64_t r = 0;
    for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
    reversed[i] = r;
  }
  const float norm = float(1.0 / std::sqrt(double(len)));
  parallel_for(n * count, 64, [&](int64_t lo, int64_t hi) {
    std::vector<float> re(len), im(len);
    for (int64_t line = lo; line < hi; ++line) {
      const int64_t base = (line / count) * 2 * plane + (line % count) * step;
      for (int64_t i = 0; i < len; ++i) {
        re[reversed[i]] = x[base + i * stride];
        im[reversed[i]] = x[base + plane + i * stride];
      }
      for (int64_t half = 1; half < len; half *= 2) {
        const int64_t tstep = len / (2 * half);
        for (int64_t s = 0; s < len; s += 2 * half) {
          for (int64_t j = 0; j < half; ++j) {
            const float wr = cos_t[j * tstep], wi = sin_t[j * tstep];
            const int64_t p = s + j, q = p + half;
            const float tr = wr * re[q] - wi * im[q], ti = wr * im[q] + wi * re[q];
            re[q] = re[p] - tr;
            im[q] = im[p] - ti;
            re[p] += tr;
            im[p] += ti;
          }
        }
      }
      for (int64_t i = 0; i < len; ++i) {
        out[base + i * stride] = norm * re[i];
        out[base + plane + i * stride] = norm * im[i];
      }
    }
  });
}

}  // namespace

void fft2(const float* x, float* out, int64_t n, int64_t h, int64_t w, bool inverse) {
  fft_lines(x, out, n, h * w, h, w, 1, w, inverse);    // rows
  fft_lines(out, out, n, h * w, w, 1, w, h, inverse);  // columns, in place
}

}  // namespace ks::cpu
