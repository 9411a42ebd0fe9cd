// Orthonormal 2-D DFT of planar complex images [n, 2, h, w]: a pass of radix-2 FFTs along the rows,
// then one along the columns (native/cpu/fft2.cpp is the same algorithm). A block holds kMax complex
// values in shared memory, so it transforms kMax / len lines at once: short lines (32-point rows of a
// small image) still give its 256 threads work. Lines are loaded in bit-reversed order; the stages are
// separated by barriers. For the column pass, consecutive threads take consecutive columns, so the
// strided loads and stores are still coalesced across the lines of a block.
#include <cmath>
#include "common.cuh"
#include "kintsugi/backend.h"

namespace ks::cuda {
namespace {

constexpr int kMax = 2048;  // the longest line (ops.cpp limits H and W to it)
constexpr int kThreads = 256;

__device__ __forceinline__ int reverse_bits(int i, int bits) {
  int r = 0;
  for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
  return r;
}

// Lines of `count` per sample; line l of sample b starts at b * 2 * plane + l * step, elements
// `stride` apart, imaginary parts one plane on.
__global__ void __launch_bounds__(kThreads)
    fft_lines_kernel(const float* x, float* out, int64_t lines, int64_t count, int64_t plane, int64_t step,
                     int64_t stride, int len, int bits, bool inverse, float norm) {
  __shared__ float re[kMax], im[kMax], twr[kMax / 2], twi[kMax / 2];
  const int per = kMax / len;
  // Twiddles in double, rounded once, as on the CPU: float angles would lose accuracy for long lines.
  for (int j = threadIdx.x; j < len / 2; j += blockDim.x) {
    const double angle = 6.283185307179586476925 * double(j) / double(len);
    twr[j] = float(cos(angle));
    twi[j] = float((inverse ? 1.0 : -1.0) * sin(angle));
  }
  const bool line_fastest = stride != 1;
  for (int64_t first = int64_t(blockIdx.x) * per; first < lines; first += int64_t(gridDim.x) * per) {
    const int here = int(lines - first < per ? lines - first : per);
    const int elems = here * len;
    for (int e = threadIdx.x; e < elems; e += blockDim.x) {
      const int l = line_fastest ? e % here : e / len, i = line_fastest ? e / here : e % len;
      const int64_t line = first + l;
      const int64_t at = (line / count) * 2 * plane + (line % count) * step + i * stride;
      const int r = l * len + reverse_bits(i, bits);
      re[r] = x[at];
      im[r] = x[at + plane];
    }
    __syncthreads();
    for (int half = 1; half < len; half *= 2) {
      const int tstep = len / (2 * half);
      for (int q = threadIdx.x; q < elems / 2; q += blockDim.x) {
        const int l = q / (len / 2), b = q % (len / 2), j = b % half;
        const int p = l * len + (b / half) * 2 * half + j, o = p + half;
        const float wr = twr[j * tstep], wi = twi[j * tstep];
        const float tr = wr * re[o] - wi * im[o], ti = wr * im[o] + wi * re[o];
        re[o] = re[p] - tr;
        im[o] = im[p] - ti;
        re[p] += tr;
        im[p] += ti;
      }
      __syncthreads();
    }
    for (int e = threadIdx.x; e < elems; e += blockDim.x) {
      const int l = line_fastest ? e % here : e / len, i = line_fastest ? e / here : e % len;
      const int64_t line = first + l;
      const int64_t at = (line / count) * 2 * plane + (line % count) * step + i * stride;
      out[at] = norm * re[l * len + i];
      out[at + plane] = norm * im[l * len + i];
    }
    __syncthreads();  // the next lines overwrite the buffers
  }
}

void fft_lines(const float* x, float* out, int64_t n, int64_t plane, int64_t count, int64_t step, int64_t stride,
               int64_t len, bool inverse) {
  int bits = 0;
  while ((int64_t(1) << bits) < len) ++bits;
  const int64_t lines = n * count, per = kMax / len, blocks = (lines + per - 1) / per;
  const float norm = float(1.0 / std::sqrt(double(len)));
  fft_lines_kernel<<<grid_for(blocks * kThreads, kThreads), kThreads, 0, stream()>>>(
      x, out, lines, count, plane, step, stride, int(len), bits, inverse, norm);
  KS_CUDA_LAUNCHED(fft2);
}

}  // namespace

void fft2(const float* x, float* out, int64_t n, int64_t h, int64_t w, bool inverse) {
  fft_lines(x, out, n, h * w, h, w, 1, w, inverse);    // rows
  fft_lines(out, out, n, h * w, w, 1, w, h, inverse);  // columns, in place
}

}  // namespace ks::cuda
