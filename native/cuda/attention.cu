// The core of single-head self-attention over the p = h*w positions (qkv [n, 3c, p]: q, k, v channels
// in that order): A = softmax over keys of q^T k / sqrt(c), o = v A^T. The products are batched strided
// GEMMs (one small tiled kernel serves all six: the operands are views of qkv, a, go and one scratch
// matrix with their own strides, so nothing is transposed in memory); the softmax and its backward run
// one block per row with fixed-order block reductions. p = 64 or 256 and c <= 256 in the presets, so
// the products are small; see native/dev/cuda-nn.md for where a fused (flash) kernel would go.
#include <cmath>
#include "common.cuh"
#include "nn.h"
#include "reduce.cuh"

namespace ks::cuda {
namespace {

constexpr int kTile = 16;  // GEMM tiles of 16 x 16 outputs, one per thread
constexpr int kRow = 128;  // threads per softmax row

// A matrix operand of sample z: element (r, k) at data + z * batch_stride + r * row_stride + k * col_stride.
struct View {
  const float* data;
  int64_t row_stride, col_stride, batch_stride;
};

// C[z](i, j) = sum_k A[z](i, k) B[z](k, j), stored (overwritten) at c + z * c_batch + i * cols + j.
// Launch: grid (ceil(cols / 16), ceil(rows / 16), min(batch, 65535)), 16 x 16 threads; block (x, y)
// owns rows [16 y, 16 y + 16) and columns [16 x, 16 x + 16) of samples z = blockIdx.z, + gridDim.z, ...;
// thread (tx, ty) computes C(16 y + ty, 16 x + tx) with k in increasing order. Each operand tile is
// staged with consecutive threads along its unit-stride index (k for A with col_stride 1, else the row;
// the column for B with col_stride 1, else k), so global reads are coalesced whichever way the view
// runs; out-of-range elements load as zero, so partial tiles need no special case.
__global__ void __launch_bounds__(kTile* kTile)
    batched_gemm(View A, View B, float* C, int64_t c_batch, int rows, int cols, int depth, int64_t batch) {
  __shared__ float As[kTile][kTile + 1];  // As[row][k]
  __shared__ float Bs[kTile][kTile + 1];  // Bs[k][col]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile;
  const bool a_k_unit = A.col_stride == 1, b_col_unit = B.col_stride == 1;
  const int ar = a_k_unit ? ty : tx, ak = a_k_unit ? tx : ty;      // the A element this thread stages
  const int bk = b_col_unit ? ty : tx, bc = b_col_unit ? tx : ty;  // the B element this thread stages
  const int i = row0 + ty, j = col0 + tx;

  for (int64_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const float* a = A.data + z * A.batch_stride;
    const float* b = B.data + z * B.batch_stride;
    float acc = 0.0f;
    for (int k0 = 0; k0 < depth; k0 += kTile) {
      const int ga = row0 + ar, gka = k0 + ak;
      As[ar][ak] = (ga < rows && gka < depth) ? a[ga * A.row_stride + gka * A.col_stride] : 0.0f;
      const int gkb = k0 + bk, gb = col0 + bc;
      Bs[bk][bc] = (gkb < depth && gb < cols) ? b[gkb * B.row_stride + gb * B.col_stride] : 0.0f;
      __syncthreads();
      for (int k = 0; k < kTile; ++k) acc = fmaf(As[ty][k], Bs[k][tx], acc);
      __syncthreads();
    }
    if (i < rows && j < cols) C[z * c_batch + int64_t(i) * cols + j] = acc;
  }
}

void gemm(View A, View B, float* C, int64_t c_batch, int64_t rows, int64_t cols, int64_t depth, int64_t batch) {
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile),
                  static_cast<unsigned>(batch < 65535 ? batch : 65535));
  batched_gemm<<<grid, dim3(kTile, kTile), 0, stream()>>>(A, B, C, c_batch, static_cast<int>(rows),
                                                          static_cast<int>(cols), static_cast<int>(depth), batch);
  KS_CUDA_LAUNCHED(attention_gemm);
}

// In place on rows of a holding the raw scores q.k: a = softmax(a * scale), as the reference's float
// path (max of the scaled scores, expf, the normaliser summed in double, one float reciprocal).
// Launch: grid-stride over rows = n * p, one block of 128 threads per row; thread t owns keys t, t + 128,
// ... and only ever rewrites its own, so the passes need no barrier beyond the reductions'.
__global__ void __launch_bounds__(kRow) softmax_rows(float* a, int64_t rows, int64_t p, float scale) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float* r = a + row * p;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < p; j += kRow) mx = fmaxf(mx, r[j] * scale);
    mx = block_max<kRow>(mx);
    double z = 0.0;
    for (int64_t j = threadIdx.x; j < p; j += kRow) {
      const float e = expf(r[j] * scale - mx);
      r[j] = e;
      z += e;
    }
    const float inv = static_cast<float>(1.0 / block_sum<kRow>(z));
    for (int64_t j = threadIdx.x; j < p; j += kRow) r[j] *= inv;
  }
}

// In place on rows of gs holding gA = g^T v: gs = A (gA - rowsum(gA * A)) * scale, the softmax and
// score-scale backward. Launch as softmax_rows.
__global__ void __launch_bounds__(kRow)
    softmax_rows_backward(const float* a, float* gs, int64_t rows, int64_t p, float scale) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* ar = a + row * p;
    float* g = gs + row * p;
    double dot = 0.0;
    for (int64_t j = threadIdx.x; j < p; j += kRow) dot += static_cast<double>(g[j]) * ar[j];
    const float d = static_cast<float>(block_sum<kRow>(dot));
    for (int64_t j = threadIdx.x; j < p; j += kRow) g[j] = ar[j] * (g[j] - d) * scale;
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65535 ? rows : 65535); }

}  // namespace

void attention_forward(const float* qkv, float* a, float* o, int64_t n, int64_t c, int64_t p) {
  if (n * c * p == 0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c)));
  const int64_t cp = c * p, pp = p * p;
  const float *q = qkv, *k = qkv + cp, *v = qkv + 2 * cp;
  gemm({q, 1, p, 3 * cp}, {k, p, 1, 3 * cp}, a, pp, p, p, c, n);  // S(i, j) = sum_ch q(ch, i) k(ch, j)
  softmax_rows<<<row_blocks(n * p), kRow, 0, stream()>>>(a, n * p, p, scale);
  KS_CUDA_LAUNCHED(attention_softmax);
  gemm({v, p, 1, 3 * cp}, {a, 1, p, pp}, o, cp, c, p, p, n);  // o(ch, i) = sum_j v(ch, j) A(i, j)
}

void attention_backward(const float* qkv, const float* a, const float* go, float* gqkv, int64_t n, int64_t c,
                        int64_t p) {
  if (n * c * p == 0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c)));
  const int64_t cp = c * p, pp = p * p;
  const float *q = qkv, *k = qkv + cp, *v = qkv + 2 * cp;
  float *gq = gqkv, *gk = gqkv + cp, *gv = gqkv + 2 * cp;
  gemm({go, p, 1, cp}, {a, p, 1, pp}, gv, 3 * cp, c, p, p, n);        // gv(ch, j) = sum_i g(ch, i) A(i, j)
  Scratch<float> gs(n * pp);                                          // [n, p, p]: gA, then gS
  gemm({go, 1, p, cp}, {v, p, 1, 3 * cp}, gs.get(), pp, p, p, c, n);  // gA(i, j) = sum_ch g(ch, i) v(ch, j)
  softmax_rows_backward<<<row_blocks(n * p), kRow, 0, stream()>>>(a, gs.get(), n * p, p, scale);
  KS_CUDA_LAUNCHED(attention_softmax_backward);
  gemm({k, p, 1, 3 * cp}, {gs.get(), 1, p, pp}, gq, 3 * cp, c, p, p, n);  // gq(ch, i) = sum_j k(ch, j) gS(i, j)
  gemm({q, p, 1, 3 * cp}, {gs.get(), p, 1, pp}, gk, 3 * cp, c, p, p, n);  // gk(ch, j) = sum_i q(ch, i) gS(i, j)
}

}  // namespace ks::cuda
