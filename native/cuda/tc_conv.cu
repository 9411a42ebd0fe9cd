// Convolution on tensor cores (issue #13): the three implicit GEMMs of conv2d.cu (forward, data
// gradient, weight gradient) with BF16 or TF32 operands and FP32 accumulation, through mma.cuh, and
// the fused UNet block's conv (tc_conv.h, docs/fused-conv.md): the input gathered from two tensors
// (concat) and/or nearest-upsampled, GroupNorm-apply + SiLU applied as it is loaded (forward and
// weight gradient: a is recomputed, never stored), bias + channel bias + residual in the store, and
// optionally per-tile GroupNorm partials of what was stored (groupnorm_stats_fold turns them into the
// next GroupNorm's statistics: no statistics pass; native/dev/NOTES.md, "the folds").
//
// One kernel, tc_gemm<Pass, P>, computes C[M, N] = sum over k of A(m, k) B(k, n) for a Pass that says
// where each element of A and B lives (a pointer, or none: zero) and where C goes:
//   FwdPass     M = cout, N = n*ho*wo output pixels, k = (ci, kh, kw); A = w, B = the input patch; the
//               epilogue adds bias, channel bias, residual
//   DataPass    one output phase (py, px) of the input gradient: N = the input pixels (iy, ix) with
//               iy % S = py, ix % S = px; k = (co, kh, kw) over the taps that reach that phase only, so
//               stride 2 multiplies no zero taps (3x3: 1, 2, 2 and 4 taps per phase instead of 9)
//   WeightPass  M = cout, N = cin*k*k taps, k = the output pixels of one slice (blockIdx.z); the
//               partial results of the slices are added in slice order by tc_fold: a bounded split-K
//               (at most kMaxSlices slices, scratch capped as in conv2d.cu), deterministic, no atomics
// Tiles: a block of 128 threads (4 warps, 2 x 2) owns a 64 x 64 tile of C; each warp 32 x 32, i.e. 2 x 4
// mma tiles of 16 x 8. K advances 16 at a time through a 3-stage cp.async pipeline: every element of the
// A and B tiles is one 4-byte cp.async (zero-filled where the element is padding or out of range), so
// the gather needs no branch on the data path. Each thread's B elements share one column, decoded
// once per kernel (Pass::col). With the prologue, each thread transforms the B elements it copied once
// they have landed, zeroing padding (Ps holds each element's scale/shift index, -1 at padding), before
// the barrier that publishes the stage. The FP32 values are rounded to BF16 / TF32 when the fragments
// are built from shared memory; P = fp32 runs FP32 FMAs on the same tiles instead (the exact path).
// Reductions: each output element is one thread's accumulator over k in a fixed order; the split-K
// fold is in slice order. Results depend on the shape only, never on the device or the schedule.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include "common.cuh"
#include "mma.cuh"
#include "tc_conv.h"

namespace ks::cuda {
namespace {

// Full unrolling where an index into the accumulator array must be a constant (otherwise the array
// lives in local memory); the emulator's g++ ignores it.
#if defined(__CUDA_ARCH__)
#define KS_UNROLL _Pragma("unroll")
#else
#define KS_UNROLL
#endif

constexpr int kBM = 64, kBN = 64, kBK = 16, kStages = 3, kThreads = 128;
constexpr int kApad = 4, kBpad = 4;  // shared rows of 20 and 68 floats (16-byte aligned rows)
constexpr int64_t kMinSlice = 1024;  // output pixels per weight-gradient slice, at least
constexpr int64_t kMaxSlices = 128;  // and at most this many slices (the split-K bound)

struct Geo {
  int64_t n;
  int cin, h, w, cout, ho, wo;
};
Geo geo_of(const Conv2dShape& s) {
  return Geo{s.n, int(s.cin), int(s.h), int(s.w), int(s.cout), int(s.ho()), int(s.wo())};
}

// The epilogue's GroupNorm partials (fold 1): for output channel m, pixel tile t (the block's blockIdx.x:
// columns [64 t, 64 t + 64) of the n * plane output pixels) and the j-th image that tile touches, the
// pair (mean, M2) over the tile's pixels of that image, at stats[2 * ((m * tiles + t) * J + j)]. J: the
// most images one tile can touch (1 when 64 divides the plane).
__host__ __device__ inline int stats_images_per_tile(int64_t n, int64_t plane) {
  const int64_t j = plane % kBN == 0 ? 1 : kBN % plane == 0 ? kBN / plane : (kBN - 1) / plane + 2;
  return int(j < n ? j : n);
}
__host__ __device__ inline int64_t stats_tiles(int64_t n, int64_t plane) { return (n * plane + kBN - 1) / kBN; }

// Where the conv's input a comes from (TcConvInput, checked on the host): channels [0, c1) from x, the
// rest from x2; planes of hx x wx (half of a's with upsample); scale/shift for the prologue.
struct Src {
  const float* x;
  const float* x2;
  const float* scale;
  const float* shift;
  int c1, hx, wx;
  bool up, silu;
};

// Element (img, ci, iy, ix) of a: its address in x or x2, or null at padding (iy, ix outside a's plane).
// sidx = img * cin + ci, the prologue's scale/shift index.
__device__ __forceinline__ const float* gather(const Src& src, const Geo& g, int64_t img, int ci, int iy, int ix,
                                               int& sidx) {
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
  if (src.up) iy >>= 1, ix >>= 1;  // nearest 2x upsampling: a(iy, ix) = x(iy / 2, ix / 2)
  sidx = int(img * g.cin + ci);
  if (ci < src.c1) return src.x + ((img * src.c1 + ci) * src.hx + iy) * int64_t(src.wx) + ix;
  return src.x2 + ((img * (g.cin - src.c1) + (ci - src.c1)) * src.hx + iy) * int64_t(src.wx) + ix;
}

// The prologue: GroupNorm's affine map folded into (scale, shift), then SiLU (or not), in FP32. The
// CPU reference of the tests writes the same roundings (fmaf, then the quotient).
__device__ __forceinline__ float silu_affine(float x, float scale, float shift, bool silu) {
  const float v = fmaf(x, scale, shift);
  return silu ? v / (1.0f + expf(-v)) : v;
}

// The prologue (src.scale set: a run-time flag, not a template parameter, to halve the instantiations):
// the B operand (the input patch) goes through it once it has landed in shared memory.
template <int K, int S>
struct FwdPass {
  static constexpr bool kMayPro = true;
  __device__ bool pro() const { return src.scale != nullptr; }
  Src src;
  const float* w;
  TcEpilogue ep;
  float* y;
  Geo g;
  __device__ int M() const { return g.cout; }
  __device__ int64_t N() const { return g.n * g.ho * g.wo; }
  __device__ void k_range(int64_t& k0, int64_t& k1) const { k0 = 0, k1 = int64_t(g.cin) * K * K; }
  __device__ const float* a(int m, int64_t k) const {
    return m < g.cout ? w + int64_t(m) * (g.cin * K * K) + k : nullptr;
  }
  // B's column q (an output pixel) decoded once per thread: its image and the input position of tap (0, 0).
  struct Col {
    int64_t img;
    int iy0, ix0;
  };
  __device__ Col col(int64_t q) const {
    if (q >= N()) return Col{-1, 0, 0};
    const int plane = g.ho * g.wo, pix = int(q % plane);
    return Col{q / plane, pix / g.wo * S - K / 2, pix % g.wo * S - K / 2};
  }
  // B's rows (k, the tap) for one thread: a plain index.
  __device__ int64_t row(int64_t k) const { return k; }
  __device__ void next(int64_t& k, int d) const { k += d; }
  __device__ const float* b(int64_t k, const Col& c, int& sidx) const {
    if (c.img < 0) return nullptr;
    const int kk = int(k), ci = kk / (K * K), r = kk % (K * K);  // constant divisors
    return gather(src, g, c.img, ci, c.iy0 + r / K, c.ix0 + r % K, sidx);
  }
  __device__ const float* any_a() const { return w; }
  __device__ const float* any_b() const { return src.x; }
  // The epilogue, in the documented order (tc_conv.h).
  __device__ void store(int m, int64_t q, float v) const {
    const int plane = g.ho * g.wo;
    const int64_t img = q / plane, at = (img * g.cout + m) * plane + q % plane;
    if (ep.bias != nullptr) v += ep.bias[m];
    if (ep.channel_bias != nullptr) v += ep.channel_bias[img * g.cout + m];
    if (ep.residual != nullptr) v += ep.residual[at];
    y[at] = v;
  }
  // Fold 1: after the block's stores (and a barrier), thread t < 64 reads back row m0 + t of the tile
  // (its 64 values, just written: L1/L2, not DRAM) and writes, per image the tile touches, (mean, M2) in
  // double, two passes over at most 64 values. The reads follow the stores of other threads of this
  // block only, which the barrier orders.
  __device__ bool finishes() const { return ep.stats != nullptr; }
  __device__ void finish(int m0, int64_t n0) const {
    const int m = m0 + int(threadIdx.x);
    if (threadIdx.x >= kBM || m >= g.cout) return;
    const int64_t plane = int64_t(g.ho) * g.wo, total = g.n * plane, end = n0 + kBN < total ? n0 + kBN : total;
    const int per = stats_images_per_tile(g.n, plane);
    const int64_t first = n0 / plane;
    double* slot = ep.stats + 2 * ((int64_t(m) * stats_tiles(g.n, plane) + blockIdx.x) * per);
    for (int64_t q0 = n0; q0 < end;) {
      const int64_t img = q0 / plane, q1 = (img + 1) * plane < end ? (img + 1) * plane : end;
      const float* row = y + (img * g.cout + m) * plane - img * plane;  // row[q]: pixel q of image img
      double sum = 0.0;
      for (int64_t q = q0; q < q1; ++q) sum += row[q];
      const double mean = sum / double(q1 - q0);
      double m2 = 0.0;
      for (int64_t q = q0; q < q1; ++q) m2 += (row[q] - mean) * (row[q] - mean);
      slot[2 * (img - first)] = mean;
      slot[2 * (img - first) + 1] = m2;
      q0 = q1;
    }
  }
};

// The taps (kh or kw) through which input row iy with iy % S == phase receives gradient: those with
// (phase + pad - kh) % S == 0.
// Packed two bits per tap (not an array: an array indexed at run time would live in local memory).
struct Taps {
  int n = 0, bits = 0;
  __device__ int operator[](int j) const { return (bits >> (2 * j)) & 3; }
};
template <int K, int S>
Taps taps_of(int phase) {
  Taps r;
  for (int kh = 0; kh < K; ++kh)
    if (((phase + K / 2 - kh) % S + S) % S == 0) r.bits |= kh << (2 * r.n++);
  return r;
}

// gx: a's gradient, all cin channels, or with gx2 non-null channels [0, c1) (gx2: the rest).
template <int K, int S>
struct DataPass {
  static constexpr bool kMayPro = false;
  __device__ bool pro() const { return false; }
  __device__ bool finishes() const { return false; }
  __device__ void finish(int, int64_t) const {}
  const float* w;
  const float* gy;
  float* gx;
  float* gx2;
  int c1;
  Geo g;
  int py, px, ha, wb;  // the phase and its plane: rows a (iy = a S + py) < ha, columns b < wb
  Taps th, tw;
  __device__ int M() const { return g.cin; }
  __device__ int64_t N() const { return g.n * ha * wb; }
  __device__ void k_range(int64_t& k0, int64_t& k1) const { k0 = 0, k1 = int64_t(g.cout) * th.n * tw.n; }
  __device__ void tap(int64_t k, int& co, int& kh, int& kw) const {
    const int per = th.n * tw.n, j = int(k % per);
    co = int(k / per), kh = th[j / tw.n], kw = tw[j % tw.n];
  }
  __device__ const float* a(int m, int64_t k) const {
    if (m >= g.cin) return nullptr;
    int co, kh, kw;
    tap(k, co, kh, kw);
    return w + ((int64_t(co) * g.cin + m) * K + kh) * K + kw;
  }
  // B's column q (an input pixel of the phase) decoded once per thread.
  struct Col {
    int64_t img;
    int iy, ix;
  };
  __device__ Col col(int64_t q) const {
    if (q >= N()) return Col{-1, 0, 0};
    const int plane = ha * wb, r = int(q % plane);
    return Col{q / plane, r / wb * S + py, r % wb * S + px};
  }
  __device__ int64_t row(int64_t k) const { return k; }
  __device__ void next(int64_t& k, int d) const { k += d; }
  __device__ const float* b(int64_t k, const Col& c, int&) const {
    if (c.img < 0) return nullptr;
    int co, kh, kw;
    tap(k, co, kh, kw);
    const int sy = c.iy + K / 2 - kh, sx = c.ix + K / 2 - kw;  // multiples of S by the choice of taps
    if (sy < 0 || sx < 0) return nullptr;
    const int oy = sy / S, ox = sx / S;
    if (oy >= g.ho || ox >= g.wo) return nullptr;
    return gy + ((c.img * g.cout + co) * g.ho + oy) * int64_t(g.wo) + ox;
  }
  __device__ const float* any_a() const { return w; }
  __device__ const float* any_b() const { return gy; }
  __device__ void store(int m, int64_t q, float v) const {
    const int plane = ha * wb, r = int(q % plane);
    const int iy = r / wb * S + py, ix = r % wb * S + px;
    const int64_t img = q / plane;
    if (gx2 != nullptr && m >= c1)
      gx2[((img * (g.cin - c1) + (m - c1)) * g.h + iy) * int64_t(g.w) + ix] = v;
    else
      gx[((img * (gx2 != nullptr ? c1 : g.cin) + m) * g.h + iy) * int64_t(g.w) + ix] = v;
  }
};

template <int K, int S>
struct WeightPass {
  static constexpr bool kMayPro = true;
  __device__ bool pro() const { return src.scale != nullptr; }
  __device__ bool finishes() const { return false; }
  __device__ void finish(int, int64_t) const {}
  Src src;
  const float* gy;
  float* part;
  Geo g;
  int64_t slice, first;
  __device__ int M() const { return g.cout; }
  __device__ int64_t N() const { return int64_t(g.cin) * K * K; }
  __device__ void k_range(int64_t& k0, int64_t& k1) const {
    const int64_t pixels = g.n * g.ho * g.wo;
    k0 = (first + blockIdx.z) * slice;
    k1 = k0 + slice < pixels ? k0 + slice : pixels;
  }
  __device__ const float* a(int m, int64_t q) const {
    if (m >= g.cout) return nullptr;
    const int plane = g.ho * g.wo;
    return gy + (q / plane * g.cout + m) * plane + q % plane;
  }
  // B's column kk (a tap) decoded once per thread; the rows (output pixels) change with k.
  struct Col {
    int ci, kh, kw;
  };
  __device__ Col col(int64_t kk) const {
    if (kk >= N()) return Col{-1, 0, 0};
    const int t = int(kk), r = t % (K * K);
    return Col{t / (K * K), r / K - K / 2, r % K - K / 2};
  }
  // B's rows (output pixels) for one thread: decoded once per k-step, then advanced with a carry
  // (no division per element).
  struct Row {
    int64_t img;
    int oy, ox;
  };
  __device__ Row row(int64_t q) const {
    const int plane = g.ho * g.wo, pix = int(q % plane);
    return Row{q / plane, pix / g.wo, pix % g.wo};
  }
  __device__ void next(Row& r, int d) const {
    r.ox += d;
    while (r.ox >= g.wo) {
      r.ox -= g.wo;
      if (++r.oy == g.ho) r.oy = 0, ++r.img;
    }
  }
  __device__ const float* b(const Row& r, const Col& c, int& sidx) const {
    if (c.ci < 0) return nullptr;
    return gather(src, g, r.img, c.ci, r.oy * S + c.kh, r.ox * S + c.kw, sidx);
  }
  __device__ const float* any_a() const { return gy; }
  __device__ const float* any_b() const { return src.x; }
  __device__ void store(int m, int64_t kk, float v) const { part[(int64_t(blockIdx.z) * g.cout + m) * N() + kk] = v; }
};

template <class Pass, int P>
__global__ void __launch_bounds__(kThreads) tc_gemm(Pass pass) {
  __shared__ __align__(16) float As[kStages][kBM][kBK + kApad];  // As[stage][m][k]
  __shared__ __align__(16) float Bs[kStages][kBK][kBN + kBpad];  // Bs[stage][k][n]
  // With the prologue (pro, uniform over the grid): the scale/shift index of each B element (-1:
  // padding or out of range, which must stay zero after the transform). Only the thread that loads an
  // element reads its entry. The data gradient never has one: no table.
  const bool pro = Pass::kMayPro && pass.pro();
  __shared__ int Ps[Pass::kMayPro ? kStages : 1][kBK][kBN];
  const int t = threadIdx.x, warp = t / 32, lane = t % 32, g = lane / 4, tq = lane % 4;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32;
  const int m0 = blockIdx.y * kBM;
  const int64_t n0 = blockIdx.x * int64_t(kBN);
  int64_t kbeg, kend;
  pass.k_range(kbeg, kend);
  const int steps = int((kend - kbeg + kBK - 1) / kBK);

  // Stage s <- the tiles at k0: element e = t + 128 j of A is (m, k) = (e / 16, e % 16) (consecutive
  // threads along k: the weights' unit stride), of B (e / 64, e % 64) (consecutive threads along n).
  // Each thread loads B elements of one column only (e % kBN == t % kBN): decode it once.
  static_assert(kThreads % kBN == 0, "a thread's B elements share their column");
  const auto bcol = pass.col(n0 + t % kBN);
  auto load = [&](int s, int64_t k0) {
    for (int j = 0; j < kBM * kBK / kThreads; ++j) {
      const int e = t + kThreads * j, m = e / kBK, kk = e % kBK;
      const float* p = k0 + kk < kend ? pass.a(m0 + m, k0 + kk) : nullptr;
      mma::cp_async<4>(&As[s][m][kk], p != nullptr ? p : pass.any_a(), p != nullptr);
    }
    // This thread's B rows are t / kBN + (kThreads / kBN) j: one cursor, advanced between elements.
    auto brow = pass.row(k0 + t / kBN);
    for (int j = 0; j < kBK * kBN / kThreads; ++j) {
      const int e = t + kThreads * j, kk = e / kBN, n = e % kBN;
      int sidx = -1;
      const float* p = k0 + kk < kend ? pass.b(brow, bcol, sidx) : nullptr;
      mma::cp_async<4>(&Bs[s][kk][n], p != nullptr ? p : pass.any_b(), p != nullptr);
      if constexpr (Pass::kMayPro) {
        if (pro) Ps[s][kk][n] = p != nullptr ? sidx : -1;
      }
      pass.next(brow, kThreads / kBN);
    }
  };
  // The prologue on stage s: each thread transforms the B elements it copied itself, once its own
  // copies have landed (cp.async.wait_group makes them visible to the issuing thread); the barrier
  // that follows publishes them to the warps that build fragments from them.
  auto prologue = [&](int s) {
    if constexpr (Pass::kMayPro) {
      if (pro) {
        for (int j = 0; j < kBK * kBN / kThreads; ++j) {
          const int e = t + kThreads * j, kk = e / kBN, n = e % kBN, i = Ps[s][kk][n];
          Bs[s][kk][n] = i >= 0 ? silu_affine(Bs[s][kk][n], pass.src.scale[i], pass.src.shift[i], pass.src.silu) : 0.0f;
        }
      }
    }
  };

  float acc[2][4][4] = {};
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load(s, kbeg + int64_t(s) * kBK);
    mma::cp_async_commit();  // empty groups keep the count of groups in flight fixed
  }
  for (int step = 0; step < steps; ++step) {
    mma::cp_async_wait<kStages - 2>();  // this thread's copies of stage `step` have landed
    prologue(step % kStages);
    __syncthreads();  // everyone's have, and everyone is done with stage step - 1
    {
      const int next = step + kStages - 1;
      if (next < steps) load(next % kStages, kbeg + int64_t(next) * kBK);  // refills stage step - 1
      mma::cp_async_commit();
    }
    const int s = step % kStages;
    if constexpr (P == int(Precision::bf16)) {
      uint32_t fa[2][4], fb[4][2];
      for (int mt = 0; mt < 2; ++mt) {
        const int r = wm + 16 * mt + g;
        fa[mt][0] = mma::pack_bf16x2(As[s][r][2 * tq], As[s][r][2 * tq + 1]);
        fa[mt][1] = mma::pack_bf16x2(As[s][r + 8][2 * tq], As[s][r + 8][2 * tq + 1]);
        fa[mt][2] = mma::pack_bf16x2(As[s][r][2 * tq + 8], As[s][r][2 * tq + 9]);
        fa[mt][3] = mma::pack_bf16x2(As[s][r + 8][2 * tq + 8], As[s][r + 8][2 * tq + 9]);
      }
      for (int nt = 0; nt < 4; ++nt) {
        const int c = wn + 8 * nt + g;
        fb[nt][0] = mma::pack_bf16x2(Bs[s][2 * tq][c], Bs[s][2 * tq + 1][c]);
        fb[nt][1] = mma::pack_bf16x2(Bs[s][2 * tq + 8][c], Bs[s][2 * tq + 9][c]);
      }
      for (int mt = 0; mt < 2; ++mt)
        for (int nt = 0; nt < 4; ++nt) mma::mma_bf16_16816(acc[mt][nt], fa[mt], fb[nt], acc[mt][nt]);
    } else if constexpr (P == int(Precision::fp32)) {
      // The exact path: FP32 FMAs from the same tiles, each thread the same 32 outputs as its mma
      // fragments (rows g, g + 8 of each 16-row tile, columns 2 tq, 2 tq + 1 of each 8-column tile).
      for (int k = 0; k < kBK; ++k) {
        float av[2][2], bv[4][2];
        for (int mt = 0; mt < 2; ++mt)
          av[mt][0] = As[s][wm + 16 * mt + g][k], av[mt][1] = As[s][wm + 16 * mt + g + 8][k];
        for (int nt = 0; nt < 4; ++nt)
          bv[nt][0] = Bs[s][k][wn + 8 * nt + 2 * tq], bv[nt][1] = Bs[s][k][wn + 8 * nt + 2 * tq + 1];
        for (int mt = 0; mt < 2; ++mt)
          for (int nt = 0; nt < 4; ++nt)
            for (int i = 0; i < 4; ++i) acc[mt][nt][i] = fmaf(av[mt][i >> 1], bv[nt][i & 1], acc[mt][nt][i]);
      }
    } else {
      for (int k8 = 0; k8 < kBK; k8 += 8) {
        uint32_t fa[2][4], fb[4][2];
        for (int mt = 0; mt < 2; ++mt) {
          const int r = wm + 16 * mt + g;
          fa[mt][0] = mma::to_tf32(As[s][r][k8 + tq]), fa[mt][1] = mma::to_tf32(As[s][r + 8][k8 + tq]);
          fa[mt][2] = mma::to_tf32(As[s][r][k8 + tq + 4]), fa[mt][3] = mma::to_tf32(As[s][r + 8][k8 + tq + 4]);
        }
        for (int nt = 0; nt < 4; ++nt) {
          const int c = wn + 8 * nt + g;
          fb[nt][0] = mma::to_tf32(Bs[s][k8 + tq][c]), fb[nt][1] = mma::to_tf32(Bs[s][k8 + tq + 4][c]);
        }
        for (int mt = 0; mt < 2; ++mt)
          for (int nt = 0; nt < 4; ++nt) mma::mma_tf32_1688(acc[mt][nt], fa[mt], fb[nt], acc[mt][nt]);
      }
    }
  }
  mma::cp_async_wait<0>();  // only empty groups remain; leaves nothing in flight at exit

  const int M = pass.M();
  const int64_t N = pass.N();
  // (clang-format would join each KS_UNROLL to the line before it)
  // clang-format off
  KS_UNROLL
  for (int mt = 0; mt < 2; ++mt)
    KS_UNROLL
    for (int nt = 0; nt < 4; ++nt)
      KS_UNROLL
      for (int i = 0; i < 4; ++i) {
        const int m = m0 + wm + 16 * mt + g + (i >= 2 ? 8 : 0);
        const int64_t n = n0 + wn + 8 * nt + 2 * tq + (i & 1);
        if (m < M && n < N) pass.store(m, n, acc[mt][nt][i]);
      }
  // clang-format on
  if (pass.finishes()) {  // uniform over the block
    __syncthreads();      // every store of the tile is done and visible to the block
    pass.finish(m0, n0);
  }
}

// dst[i] += sum over z of part[z * count + i], z in increasing order.
__global__ void tc_fold(const float* part, int64_t parts, int64_t count, float* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t z = 0; z < parts; ++z) s += part[z * count + i];
    dst[i] += s;
  }
}

dim3 grid_of(int64_t n, int64_t m, int64_t z = 1) {
  return dim3(static_cast<unsigned>((n + kBN - 1) / kBN), static_cast<unsigned>((m + kBM - 1) / kBM),
              static_cast<unsigned>(z));
}

template <class Pass>
void launch(const Pass& pass, int64_t n, int64_t m, int64_t z, Precision p) {
  if (p == Precision::tf32)
    tc_gemm<Pass, int(Precision::tf32)><<<grid_of(n, m, z), kThreads, 0, stream()>>>(pass);
  else if (p == Precision::bf16)
    tc_gemm<Pass, int(Precision::bf16)><<<grid_of(n, m, z), kThreads, 0, stream()>>>(pass);
  else
    tc_gemm<Pass, int(Precision::fp32)><<<grid_of(n, m, z), kThreads, 0, stream()>>>(pass);
  KS_CUDA_LAUNCHED(tc_gemm);
}

Src src_of(const TcConvInput& in, const Conv2dShape& s) {
  Src r{};
  r.x = in.x, r.x2 = in.x2, r.scale = in.scale, r.shift = in.shift;
  r.c1 = in.x2 != nullptr ? int(in.c1) : int(s.cin);
  r.hx = int(in.upsample ? s.h / 2 : s.h), r.wx = int(in.upsample ? s.w / 2 : s.w);
  r.up = in.upsample, r.silu = in.silu;
  return r;
}

template <int K, int S>
void forward(const TcConvInput& in, const float* w, const TcEpilogue& ep, float* y, const Conv2dShape& s) {
  const FwdPass<K, S> pass{src_of(in, s), w, ep, y, geo_of(s)};
  launch(pass, s.n * s.ho() * s.wo(), s.cout, 1, s.precision);
}

template <int K, int S>
void backward(const TcConvInput& in, const float* w, const float* gy, float* gx, float* gx2, float* gw,
              const Conv2dShape& s) {
  const Geo g = geo_of(s);
  if (gx != nullptr && s.n * s.h * s.w * s.cin != 0) {
    for (int py = 0; py < S; ++py)
      for (int px = 0; px < S; ++px) {
        DataPass<K, S> pass{w,
                            gy,
                            gx,
                            in.x2 != nullptr ? gx2 : nullptr,
                            int(in.c1),
                            g,
                            py,
                            px,
                            int((s.h - py + S - 1) / S),
                            int((s.w - px + S - 1) / S),
                            taps_of<K, S>(py),
                            taps_of<K, S>(px)};
        const int64_t n = s.n * pass.ha * pass.wb;
        if (n != 0) launch(pass, n, s.cin, 1, s.precision);  // a phase without taps writes zeros
      }
  }
  const int64_t pixels = s.n * s.ho() * s.wo(), taps = s.cin * K * K, wsize = s.cout * taps;
  if (wsize == 0 || pixels == 0) return;
  // Slices: at least kMinSlice pixels, at most kMaxSlices of them (a multiple of kBK pixels each); a
  // function of the shape only. Groups of slices whose partials fit the scratch cap, folded in order.
  int64_t slice = std::max<int64_t>(kMinSlice, (pixels + kMaxSlices - 1) / kMaxSlices);
  slice = (slice + kBK - 1) / kBK * kBK;
  const int64_t slices = (pixels + slice - 1) / slice;
  const int64_t fit =
      static_cast<int64_t>(conv2d_weight_scratch_bytes() / (static_cast<size_t>(wsize) * sizeof(float)));
  const int64_t group = std::clamp<int64_t>(fit, 1, slices);
  Scratch<float> part(group * wsize);
  for (int64_t first = 0; first < slices; first += group) {
    const int64_t count = std::min(group, slices - first);
    const WeightPass<K, S> pass{src_of(in, s), gy, part.get(), g, slice, first};
    launch(pass, taps, s.cout, count, s.precision);
    tc_fold<<<grid_for(wsize), 256, 0, stream()>>>(part.get(), count, wsize, gw);
    KS_CUDA_LAUNCHED(tc_fold);
  }
}

// The (kernel, stride) instantiation for a shape, or an error naming what is unsupported.
template <class F>
void dispatch(const Conv2dShape& s, F&& f) {
  const int key = int(s.k * 10 + s.stride);
  if (key != 11 && key != 12 && key != 31 && key != 32)
    throw std::invalid_argument("conv2d on tensor cores supports kernel 1 or 3 and stride 1 or 2, got kernel " +
                                std::to_string(s.k) + " stride " + std::to_string(s.stride));
  auto with = [&](auto k, auto st) { f(k, st); };
  using I1 = std::integral_constant<int, 1>;
  using I2 = std::integral_constant<int, 2>;
  using I3 = std::integral_constant<int, 3>;
  if (key == 11) with(I1{}, I1{});
  if (key == 12) with(I1{}, I2{});
  if (key == 31) with(I3{}, I1{});
  if (key == 32) with(I3{}, I2{});
}

// What the fused entry points accept (tc_conv.h), checked before anything is queued.
void check_input(const TcConvInput& in, const Conv2dShape& s, const char* fn) {
  const std::string at = std::string(fn) + ": ";
  if (in.x == nullptr) throw std::invalid_argument(at + "TcConvInput.x is null");
  if ((in.scale == nullptr) != (in.shift == nullptr))
    throw std::invalid_argument(at + "TcConvInput.scale and .shift must both be set (the prologue) or both null");
  if (in.x2 != nullptr && !(in.c1 > 0 && in.c1 < s.cin))
    throw std::invalid_argument(at + "TcConvInput.c1 must be in (0, cin = " + std::to_string(s.cin) +
                                ") with x2 set (concat), got " + std::to_string(in.c1));
  if (in.upsample && (s.h % 2 != 0 || s.w % 2 != 0))
    throw std::invalid_argument(at + "upsample needs an even input size (the upsampled one), got " +
                                std::to_string(s.h) + "x" + std::to_string(s.w));
  if (s.n * s.cin > int64_t(INT32_MAX))
    throw std::invalid_argument(at + "n * cin must fit 32 bits (the prologue's index), got " +
                                std::to_string(s.n * s.cin));
}

}  // namespace

int64_t tc_conv2d_weight_slices(const Conv2dShape& s) {
  const int64_t pixels = s.n * s.ho() * s.wo();
  int64_t slice = std::max<int64_t>(kMinSlice, (pixels + kMaxSlices - 1) / kMaxSlices);
  slice = (slice + kBK - 1) / kBK * kBK;
  return (pixels + slice - 1) / slice;
}

void tc_conv2d_forward(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  TcConvInput in;
  in.x = x;
  TcEpilogue ep;
  ep.bias = b;
  tc_conv2d_forward_fused(in, w, ep, y, s);
}

void tc_conv2d_backward(const float* x, const float* w, const float* gy, float* gx, float* gw, const Conv2dShape& s) {
  TcConvInput in;
  in.x = x;
  tc_conv2d_backward_fused(in, w, gy, gx, nullptr, gw, s);
}

void tc_conv2d_forward_fused(const TcConvInput& in, const float* w, const TcEpilogue& ep, float* y,
                             const Conv2dShape& s) {
  check_input(in, s, "tc_conv2d_forward_fused");
  dispatch(s, [&](auto k, auto st) { forward<decltype(k)::value, decltype(st)::value>(in, w, ep, y, s); });
}

void tc_conv2d_backward_fused(const TcConvInput& in, const float* w, const float* gy, float* ga, float* ga2, float* gw,
                              const Conv2dShape& s) {
  check_input(in, s, "tc_conv2d_backward_fused");
  dispatch(s, [&](auto k, auto st) { backward<decltype(k)::value, decltype(st)::value>(in, w, gy, ga, ga2, gw, s); });
}

namespace {
__global__ void groupnorm_scale_shift_kernel(const float* mean, const float* rstd, const float* gamma,
                                             const float* beta, float* scale, float* shift, int64_t n, int64_t channels,
                                             int groups) {
  const int64_t per = channels / groups, count = n * channels;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t img = i / channels, c = i % channels, j = img * groups + c / per;
    const float sc = rstd[j] * gamma[c];
    scale[i] = sc;
    shift[i] = fmaf(-mean[j], sc, beta[c]);
  }
}
}  // namespace

namespace {
// One thread per (image, group): the group's channels in order, each channel's partials in tile order,
// merged by Chan's formula (count, mean, M2) in double. Counts from the geometry: tile t holds pixels
// [64 t, 64 t + 64) of the n * hw, image img [img hw, img hw + hw).
__global__ void groupnorm_stats_fold_kernel(const double* part, const double* part2, int64_t c1, int64_t n, int64_t c,
                                            int64_t hw, int groups, double eps, float* mean, float* rstd) {
  const int64_t per_group = c / groups, jobs = n * groups, tiles = stats_tiles(n, hw), total = n * hw;
  const int per = stats_images_per_tile(n, hw);
  for (int64_t job = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; job < jobs;
       job += int64_t(gridDim.x) * blockDim.x) {
    const int64_t img = job / groups, c0 = job % groups * per_group;
    const int64_t lo = img * hw, hi = lo + hw;
    double cnt = 0.0, mu = 0.0, m2 = 0.0;
    for (int64_t ch = c0; ch < c0 + per_group; ++ch) {
      const double* src = ch < c1 ? part + 2 * (ch * tiles * per) : part2 + 2 * ((ch - c1) * tiles * per);
      for (int64_t t = lo / kBN; t <= (hi - 1) / kBN; ++t) {
        const int64_t a = t * kBN > lo ? t * kBN : lo, e = (t + 1) * kBN < hi ? (t + 1) * kBN : hi;
        const int64_t b = e < total ? e : total;
        const double nb = double(b - a), mb = src[2 * (t * per + img - t * kBN / hw)],
                     m2b = src[2 * (t * per + img - t * kBN / hw) + 1];
        const double nn = cnt + nb, d = mb - mu;
        mu += d * (nb / nn);
        m2 += m2b + d * d * (cnt * nb / nn);
        cnt = nn;
      }
    }
    mean[job] = static_cast<float>(mu);
    rstd[job] = static_cast<float>(1.0 / sqrt(m2 / cnt + eps));
  }
}
}  // namespace

int64_t tc_stats_doubles(int64_t n, int64_t hw, int64_t channels) {
  if (n * hw == 0) return 0;
  return 2 * channels * stats_tiles(n, hw) * stats_images_per_tile(n, hw);
}

void groupnorm_stats_fold(const double* part, const double* part2, int64_t c1, int64_t n, int64_t c, int64_t hw,
                          int groups, double eps, float* mean, float* rstd) {
  const std::string at = "groupnorm_stats_fold: ";
  if (groups <= 0 || c % groups != 0)
    throw std::invalid_argument(at + "c (" + std::to_string(c) + ") must be a positive multiple of groups (" +
                                std::to_string(groups) + ")");
  if (part == nullptr) throw std::invalid_argument(at + "part is null");
  if (part2 == nullptr ? c1 != c : !(c1 > 0 && c1 < c))
    throw std::invalid_argument(at + "c1 must be c (" + std::to_string(c) + ") without part2, in (0, c) with it; got " +
                                std::to_string(c1));
  if (hw <= 0) throw std::invalid_argument(at + "hw must be positive, got " + std::to_string(hw));
  if (n * groups == 0) return;
  groupnorm_stats_fold_kernel<<<grid_for(n * groups), 256, 0, stream()>>>(part, part2, c1, n, c, hw, groups, eps, mean,
                                                                          rstd);
  KS_CUDA_LAUNCHED(groupnorm_stats_fold);
}

void groupnorm_scale_shift(const float* mean, const float* rstd, const float* gamma, const float* beta, float* scale,
                           float* shift, int64_t n, int64_t channels, int groups) {
  if (groups <= 0 || channels % groups != 0)
    throw std::invalid_argument("groupnorm_scale_shift: channels (" + std::to_string(channels) +
                                ") must be a positive multiple of groups (" + std::to_string(groups) + ")");
  if (n * channels == 0) return;
  groupnorm_scale_shift_kernel<<<grid_for(n * channels), 256, 0, stream()>>>(mean, rstd, gamma, beta, scale, shift, n,
                                                                             channels, groups);
  KS_CUDA_LAUNCHED(groupnorm_scale_shift);
}

}  // namespace ks::cuda
