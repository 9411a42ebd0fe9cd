// Sinusoidal time embedding: half = c / 2, f_i = exp(-ln(10000) i / half), emb[r] = concat(sin(t f), cos(t f)).
// In double, as the reference: t reaches 999, where a float phase keeps only about four correct digits.
// ln(10000) comes from the host's libm so that the frequencies are the reference's to the last bit.
#include <cmath>
#include "common.cuh"
#include "nn.h"

namespace ks::cuda {
namespace {

// Launch: grid-stride over n * half, one thread per (row r, frequency i); writes emb[r, i] and
// emb[r, half + i]. With c odd the last column is left as it is, as in the reference.
__global__ void time_embedding_kernel(const float* t, float* emb, int64_t n, int64_t c, double ln10000) {
  const int64_t half = c / 2;
  for (int64_t job = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; job < n * half;
       job += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = job / half, i = job % half;
    const double f = exp(-ln10000 * static_cast<double>(i) / static_cast<double>(half));
    const double phase = static_cast<double>(t[r]) * f;
    emb[r * c + i] = static_cast<float>(sin(phase));
    emb[r * c + half + i] = static_cast<float>(cos(phase));
  }
}

}  // namespace

void time_embedding(const float* t, float* emb, int64_t n, int64_t c) {
  if (n * (c / 2) == 0) return;
  time_embedding_kernel<<<grid_for(n * (c / 2)), 256, 0, stream()>>>(t, emb, n, c, std::log(10000.0));
  KS_CUDA_LAUNCHED(time_embedding);
}

}  // namespace ks::cuda
