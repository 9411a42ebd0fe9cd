// Convolution (square kernel k = 1 or 3, stride 1 or 2, zero padding k/2, weight [cout, cin, k, k]) as
// implicit GEMMs in FP32: tiles of the virtual im2col matrix are gathered straight from the tensors into
// shared memory, so no column buffer is ever materialised. With kk = (ci, kh, kw) a tap of the kernel and
// q = (img, oy, ox) an output pixel:
//   forward      y[img, co, oy, ox] = b[co] + sum_kk w[co, kk] * patch(kk, q)
//   data grad    gx[img, ci, iy, ix] = sum over (co, kh, kw) of w[co, ci, kh, kw] * gy at the output
//                pixel that read (iy, ix) through tap (kh, kw), if there is one
//   weight grad  gw[co, kk] += sum_q gy[img, co, oy, ox] * patch(kk, q)
//   bias grad    gb[co] += sum over img of channel_sums(gy)[img, co]
// where patch(kk, q) = x[img, ci, oy*stride + kh - pad, ox*stride + kw - pad], zero in the padding.
// The weight gradient is split over fixed slices of pixels (a function of the shape only) whose partial
// results are added in slice order by a second kernel: deterministic, no atomics. The partial results
// of all slices at once would take ceil(pixels / 1024) * cout * cin * k^2 floats (a review counted 151 MB
// at cifar32 batch 128 and about 0.6 GB at 256^2 batch 16), so the slices run in groups whose
// partials fit a capped scratch buffer (32 MiB; conv2d_weight_scratch_cap), each group folded into gw
// before the next: still a function of the shape and the cap only, never of the device.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include "common.cuh"
#include "nn.h"
#include "mma_check.h"
#include "tc_conv.h"

namespace ks::cuda {
namespace {

constexpr int kTile = 64;                         // a block computes a 64 x 64 tile of its GEMM's result
constexpr int kStep = 16;                         // reduction entries staged in shared memory per iteration
constexpr int kThreads = 256;                     // 16 x 16 threads, 4 x 4 results each
constexpr int kPad = 1;                           // shared rows of 65 floats: the transposing stores hit distinct banks
constexpr int64_t kSlice = 1024;                  // pixels per weight-gradient slice (before the grid.z cap below)
constexpr size_t kScratchCap = size_t(32) << 20;  // bytes of weight-gradient partials per group of slices

// The cap in force: set by conv2d_weight_scratch_cap, else KINTSUGI_CONV2D_SCRATCH_BYTES (read once;
// the GPU first-light run sets it small to exercise the grouped path), else kScratchCap. 0: not read yet.
std::atomic<size_t> g_scratch_cap{0};

size_t scratch_cap() {
  size_t cap = g_scratch_cap.load();
  if (cap != 0) return cap;
  cap = kScratchCap;
  if (const char* env = std::getenv("KINTSUGI_CONV2D_SCRATCH_BYTES"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (*end != '\0' || v == 0 || env[0] == '-')
      throw std::invalid_argument(
          std::string("KINTSUGI_CONV2D_SCRATCH_BYTES: expected a positive number of bytes, got \"") + env + "\"");
    cap = static_cast<size_t>(v);
  }
  g_scratch_cap.store(cap);
  return cap;
}

// BF16 / TF32 go to the tensor cores (tc_conv.cu) where the device has them (compute capability 8.0
// and newer); elsewhere these FP32 kernels run, whose error is far inside any rounded precision's bound.
bool use_tensor_cores(const Conv2dShape& s) { return s.precision != Precision::fp32 && tensor_cores_available(); }

// Per-image sizes fit int; anything multiplied by the batch is int64. The kernel size K (1 or 3) and
// the stride S (1 or 2) are template parameters: the tap and stride arithmetic of every gathered
// element then compiles to multiplications and shifts instead of integer divisions.
struct Geo {
  int64_t n;
  int cin, h, w, cout, ho, wo;
};

Geo geo_of(const Conv2dShape& s) {
  return Geo{s.n, int(s.cin), int(s.h), int(s.w), int(s.cout), int(s.ho()), int(s.wo())};
}

// patch(kk, (img, oy, ox)): the input value that output pixel (oy, ox) reads through tap kk = (ci, kh, kw).
template <int K, int S>
__device__ float patch(const float* x, const Geo& g, int64_t img, int oy, int ox, int kk) {
  constexpr int pad = K / 2;
  const int ci = kk / (K * K), r = kk % (K * K), kh = r / K, kw = r % K;
  const int iy = oy * S + kh - pad, ix = ox * S + kw - pad;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return 0.0f;
  return x[((img * g.cin + ci) * g.h + iy) * int64_t(g.w) + ix];
}

// The gradient that input pixel (iy, ix) receives through tap kk = (co, kh, kw): gy at the output pixel
// (oy, ox) with oy * stride + kh - pad = iy (and likewise for x), when that is a whole pixel of the
// output; zero otherwise (stride 2: three taps in four have no such pixel).
template <int K, int S>
__device__ float gy_through(const float* gy, const Geo& g, int64_t img, int iy, int ix, int kk) {
  constexpr int pad = K / 2;
  const int co = kk / (K * K), r = kk % (K * K), kh = r / K, kw = r % K;
  const int sy = iy + pad - kh, sx = ix + pad - kw;  // tested >= 0 before % and /
  if (sy < 0 || sx < 0 || sy % S != 0 || sx % S != 0) return 0.0f;
  const int oy = sy / S, ox = sx / S;
  if (oy >= g.ho || ox >= g.wo) return 0.0f;
  return gy[((img * g.cout + co) * g.ho + oy) * int64_t(g.wo) + ox];
}

// The two passes that produce a tensor, as out[img, m, pixel] = bias[m] + sum_kk A(m, kk) B(kk, (img, pixel)):
//   forward (kData false): m = co over output pixels, A = w as [cout, cin*k*k], B = patch; bias = b (may be null)
//   data    (kData true):  m = ci over input pixels,  A(ci, (co, r)) = w[co, ci, r], B = gy_through; no bias
// The forward's epilogue (ConvEpilogue) is added in the store: out = ((bias + sum) + cbias[img, m]) + res,
// cbias [n, cout] and res (out's shape) null when absent (always for the data pass).
// Launch: grid (ceil(n * pixels / 64), ceil(M / 64)), 256 threads; block (x, y) owns pixels
// [64 x, 64 x + 64) of the batch-flattened pixel index and rows [64 y, 64 y + 64).
// Loads per step of 16 taps (j = 0..3): A(m0 + t/16 + 16j, k0 + t%16) and B(k0 + t/64 + 4j, p0 + t%64),
// zero outside the matrices, so the last partial tile in every dimension needs no special case; the
// pixel a thread gathers is fixed, so its (img, y, x) is decoded once. Thread (ty, tx) = (t/16, t%16)
// accumulates rows m0 + ty + 16i and pixels p0 + tx + 16j (i, j = 0..3): within a warp the A reads are
// broadcasts and the B reads consecutive, and the stores are consecutive pixels.
template <bool kData, int K, int S>
__global__ void __launch_bounds__(kThreads) conv_gemm(const float* w, const float* src, const float* bias,
                                                      const float* cbias, const float* res, float* out, Geo g) {
  const int M = kData ? g.cin : g.cout;
  const int depth = (kData ? g.cout : g.cin) * K * K;
  const int oh = kData ? g.h : g.ho, ow = kData ? g.w : g.wo;
  const int plane = oh * ow;
  const int64_t N = g.n * plane;
  __shared__ float As[kStep][kTile + kPad];  // As[tap][row]
  __shared__ float Bs[kStep][kTile + kPad];  // Bs[tap][pixel]

  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int m0 = blockIdx.y * kTile;
  const int64_t p0 = blockIdx.x * int64_t(kTile);

  const int64_t q = p0 + t % kTile;  // the pixel this thread gathers into Bs
  const bool q_ok = q < N;
  const int64_t img = q_ok ? q / plane : 0;
  const int pix = q_ok ? int(q % plane) : 0, py = pix / ow, px = pix % ow;

  float acc[4][4];
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty + 16 * i;
    const float b0 = (!kData && bias != nullptr && m < M) ? bias[m] : 0.0f;
    for (int j = 0; j < 4; ++j) acc[i][j] = b0;
  }

  for (int k0 = 0; k0 < depth; k0 += kStep) {
    for (int j = 0; j < 4; ++j) {
      const int ar = t / 16 + 16 * j, ak = t % 16;
      const int m = m0 + ar, kk = k0 + ak;
      float a = 0.0f;
      if (m < M && kk < depth)
        a = kData ? w[(int64_t(kk / (K * K)) * g.cin + m) * (K * K) + kk % (K * K)] : w[int64_t(m) * depth + kk];
      As[ak][ar] = a;

      const int bk = t / kTile + 4 * j, kb = k0 + bk;
      float b = 0.0f;
      if (q_ok && kb < depth)
        b = kData ? gy_through<K, S>(src, g, img, py, px, kb) : patch<K, S>(src, g, img, py, px, kb);
      Bs[bk][t % kTile] = b;
    }
    __syncthreads();
    for (int r = 0; r < kStep; ++r) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = As[r][ty + 16 * i];
      for (int j = 0; j < 4; ++j) b[j] = Bs[r][tx + 16 * j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  for (int j = 0; j < 4; ++j) {
    const int64_t qo = p0 + tx + 16 * j;
    if (qo >= N) continue;
    const int64_t io = qo / plane;
    const int po = int(qo % plane);
    for (int i = 0; i < 4; ++i) {
      const int m = m0 + ty + 16 * i;
      if (m >= M) continue;
      const int64_t at = (io * M + m) * plane + po;
      float v = acc[i][j];
      if (cbias != nullptr) v += cbias[io * M + m];
      if (res != nullptr) v += res[at];
      out[at] = v;
    }
  }
}

// Weight gradient of one pixel slice: part[z, co, kk] = sum over pixels q in [(first+z)*slice,
// (first+z+1)*slice) of gy[img, co, q] * patch(kk, q), q running over the batch-flattened output pixels
// in increasing order. Launch: grid (ceil(cin*K*K / 64), ceil(cout / 64), slices of this group), 256
// threads; block (x, y, z) owns taps [64 x, 64 x + 64), output channels [64 y, 64 y + 64) and slice
// first + z of the whole pass.
// Loads per step of 16 pixels: thread t reads pixel q0 + t%16 (consecutive threads, consecutive pixels)
// for channels / taps t/16 + 16j; pixels past the slice or the batch load as zero. Thread (ty, tx)
// accumulates channels co0 + ty + 16i and taps kk0 + tx + 16j. Every slice but the last is a whole
// number of steps (slice is a multiple of 16), so a step never straddles two slices.
template <int K, int S>
__global__ void __launch_bounds__(kThreads)
    conv_weight_grad(const float* x, const float* gy, float* part, Geo g, int64_t slice, int64_t first) {
  const int taps = g.cin * K * K, plane = g.ho * g.wo;
  const int64_t N = g.n * plane;
  __shared__ float Gs[kStep][kTile + kPad];  // Gs[pixel][co]
  __shared__ float Xs[kStep][kTile + kPad];  // Xs[pixel][tap]

  const int t = threadIdx.x, tx = t % 16, ty = t / 16, lp = t % kStep;
  const int co0 = blockIdx.y * kTile, kk0 = blockIdx.x * kTile;
  const int64_t begin = (first + blockIdx.z) * slice;
  const int64_t end = begin + slice < N ? begin + slice : N;

  // The pixel q = q0 + lp this thread loads, as (img, pix), advanced by kStep each step without dividing.
  int64_t img = (begin + lp) / plane;
  int pix = int((begin + lp) % plane);
  float acc[4][4] = {};
  for (int64_t q0 = begin; q0 < end; q0 += kStep) {
    const bool ok = q0 + lp < end;
    const int oy = pix / g.wo, ox = pix % g.wo;
    for (int j = 0; j < 4; ++j) {
      const int col = t / kStep + 16 * j;
      const int co = co0 + col, kk = kk0 + col;
      Gs[lp][col] = (ok && co < g.cout) ? gy[(img * g.cout + co) * plane + pix] : 0.0f;
      Xs[lp][col] = (ok && kk < taps) ? patch<K, S>(x, g, img, oy, ox, kk) : 0.0f;
    }
    for (pix += kStep; pix >= plane; pix -= plane) ++img;
    __syncthreads();
    for (int r = 0; r < kStep; ++r) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = Gs[r][ty + 16 * i];
      for (int j = 0; j < 4; ++j) b[j] = Xs[r][tx + 16 * j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  float* out = part + blockIdx.z * (int64_t(g.cout) * taps);
  for (int i = 0; i < 4; ++i) {
    const int co = co0 + ty + 16 * i;
    if (co >= g.cout) continue;
    for (int j = 0; j < 4; ++j) {
      const int kk = kk0 + tx + 16 * j;
      if (kk < taps) out[int64_t(co) * taps + kk] = acc[i][j];
    }
  }
}

// dst[i] += sum over z of part[z * count + i], z in increasing order. One thread per element (grid-stride).
__global__ void fold_partials(const float* part, int64_t parts, int64_t count, float* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t z = 0; z < parts; ++z) s += part[z * count + i];
    dst[i] += s;
  }
}

dim3 tiles(int64_t cols, int64_t rows, int64_t depth = 1) {
  return dim3(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile),
              static_cast<unsigned>(depth));
}

template <int K, int S>
void forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
             const ConvEpilogue<float>& e) {
  const Geo g = geo_of(s);
  conv_gemm<false, K, S>
      <<<tiles(s.n * s.ho() * s.wo(), s.cout), kThreads, 0, stream()>>>(w, x, b, e.chan_bias, e.residual, y, g);
  KS_CUDA_LAUNCHED(conv2d_forward);
}

template <int K, int S>
void backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb, const Conv2dShape& s) {
  const Geo g = geo_of(s);
  const int64_t pixels = s.n * s.ho() * s.wo(), taps = s.cin * K * K, wsize = s.cout * taps;
  if (use_tensor_cores(s)) {
    tc_conv2d_backward(x, w, gy, gx, gw, s);  // with cout = 0 its data pass writes gx = 0, as the reference
  } else if (gx != nullptr && s.n * s.h * s.w * s.cin != 0) {  // with cout = 0 this writes zeros, as the reference
    conv_gemm<true, K, S>
        <<<tiles(s.n * s.h * s.w, s.cin), kThreads, 0, stream()>>>(w, gy, nullptr, nullptr, nullptr, gx, g);
    KS_CUDA_LAUNCHED(conv2d_backward_data);
  }

  // The slice length depends on the shape only (never on the device), so the summation order, and with
  // it the result, is the same on every GPU. grid.z is at most 65535.
  int64_t slice = kSlice;
  const int64_t min_slice = (pixels + 65534) / 65535;
  if (slice < min_slice) slice = (min_slice + kStep - 1) / kStep * kStep;
  const int64_t slices = (pixels + slice - 1) / slice;
  if (wsize != 0 && pixels != 0 && !use_tensor_cores(s)) {
    // Groups of `group` slices whose partials fit the cap (at least one slice, whatever the cap), each
    // folded into gw in order; one scratch buffer serves every group (the stream runs them in turn).
    const int64_t fit = static_cast<int64_t>(scratch_cap() / (static_cast<size_t>(wsize) * sizeof(float)));
    const int64_t group = std::clamp<int64_t>(fit, 1, slices);
    Scratch<float> part(group * wsize);
    for (int64_t first = 0; first < slices; first += group) {
      const int64_t count = std::min(group, slices - first);
      conv_weight_grad<K, S><<<tiles(taps, s.cout, count), kThreads, 0, stream()>>>(x, gy, part.get(), g, slice, first);
      KS_CUDA_LAUNCHED(conv2d_backward_weight);
      fold_partials<<<grid_for(wsize), 256, 0, stream()>>>(part.get(), count, wsize, gw);
      KS_CUDA_LAUNCHED(conv2d_backward_weight_fold);
    }
  }

  conv2d_bias_backward(gy, gb, s);
}

[[noreturn]] void unsupported(const Conv2dShape& s) {
  throw std::invalid_argument("conv2d on CUDA supports kernel 1 or 3 and stride 1 or 2, got kernel " +
                              std::to_string(s.k) + ", stride " + std::to_string(s.stride));
}

}  // namespace

size_t conv2d_weight_scratch_bytes() { return scratch_cap(); }

void conv2d_bias_backward(const float* gy, float* gb, const Conv2dShape& s) {
  if (gb == nullptr || s.cout == 0) return;
  Scratch<float> sums(s.n * s.cout);  // [n, cout]: per-image sums, then added over images in order
  channel_sums(gy, sums.get(), s.n, s.cout, s.ho() * s.wo());
  fold_partials<<<grid_for(s.cout), 256, 0, stream()>>>(sums.get(), s.n, s.cout, gb);
  KS_CUDA_LAUNCHED(conv2d_backward_bias_fold);
}

size_t conv2d_weight_scratch_cap(size_t bytes) {
  const size_t previous = scratch_cap();
  g_scratch_cap.store(bytes != 0 ? bytes : kScratchCap);
  return previous;
}

void conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  conv2d_forward_fused(x, w, b, y, s, {});
}

void conv2d_forward_fused(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                          const ConvEpilogue<float>& e) {
  if (s.n * s.ho() * s.wo() == 0 || s.cout == 0) return;
  if (use_tensor_cores(s)) {
    // The tensor-core kernel (tc_conv.cu) has its own epilogue; until it takes these two, they are the
    // graph helpers' passes after it, in the same order.
    tc_conv2d_forward(x, w, b, y, s);
    if (e.chan_bias) add_channel_bias(y, e.chan_bias, s.n, s.cout, s.ho() * s.wo());
    if (e.residual) add_inplace(y, e.residual, s.n * s.cout * s.ho() * s.wo());
    return;
  }
  switch (s.k * 10 + s.stride) {
    case 11:
      return forward<1, 1>(x, w, b, y, s, e);
    case 12:
      return forward<1, 2>(x, w, b, y, s, e);
    case 31:
      return forward<3, 1>(x, w, b, y, s, e);
    case 32:
      return forward<3, 2>(x, w, b, y, s, e);
    default:
      unsupported(s);
  }
}

void conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                     const Conv2dShape& s) {
  switch (s.k * 10 + s.stride) {
    case 11:
      return backward<1, 1>(x, w, gy, gx, gw, gb, s);
    case 12:
      return backward<1, 2>(x, w, gy, gx, gw, gb, s);
    case 31:
      return backward<3, 1>(x, w, gy, gx, gw, gb, s);
    case 32:
      return backward<3, 2>(x, w, gy, gx, gw, gb, s);
    default:
      unsupported(s);
  }
}

}  // namespace ks::cuda
