// The two backends, one function per op under the same name. They run on the device's worker thread,
// take raw pointers to validated memory and return when the work is queued (CUDA) or done (CPU).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>
#include "kintsugi/allocator.h"
#include "kintsugi/device.h"
#include "kintsugi/ops.h"

// The elementwise, random and optimiser ops, declared alike in both backend namespaces.
#define KS_BACKEND_OPS                                                                                          \
  void fill(float* out, int64_t n, float value);                                                                \
  void randn(float* out, int64_t n, RngKey key);                                                                \
  void uniform(float* out, int64_t n, float low, float high, RngKey key);                                       \
  void random_bits(uint32_t* out, int64_t n, RngKey key);                                                       \
  void copy(const float* src, float* dst, int64_t n);                                                           \
  void add(const float* a, const float* b, float* out, int64_t n);                                              \
  void scale(const float* a, float s, float* out, int64_t n);                                                   \
  void sum(const float* a, int64_t n, float* out);                                                              \
  void sum_squares(const float* a, int64_t n, float* out);                                                      \
  void adamw(float* params, const float* grads, float* m, float* v, const float* sumsq, int64_t n,              \
             const AdamWConfig& c);                                                                             \
  void ema_update(float* ema, const float* params, int64_t n, float decay);                                     \
  /* out[b, i] = sum_k c[k][b] * x[k][b, i] for k < terms (<= 3), b < n, i < per_sample */                      \
  void combine(float* out, const float* const x[3], const float* const c[3], int terms, int64_t n,              \
               int64_t per_sample);                                                                             \
  void clamp(const float* a, float low, float high, float* out, int64_t n);                                     \
  /* Degradation operators (lib/corruption): out = a * b elementwise */                                         \
  void mul(const float* a, const float* b, float* out, int64_t n);                                              \
  /* Helmert transform of each k x k block of `planes` images of (h k) x (w k); coefficient-plane-major */      \
  /* SVD-domain layout [planes, coefs, h, w] (block_average.cpp); coefs is k*k or 1 (block sums / k) */         \
  void block_average_vt(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs, \
                        float scale);                                                                           \
  void block_average_v(const float* c, float* out, int64_t planes, int64_t h, int64_t w, int k, int64_t coefs,  \
                       float scale);                                                                            \
  /* Orthonormal 2-D DFT of n planar complex images [n, 2, h, w] (h, w powers of two); out may be x */          \
  void fft2(const float* x, float* out, int64_t n, int64_t h, int64_t w, bool inverse);

namespace ks::cpu {
KS_BACKEND_OPS
Allocator& allocator();
DeviceInfo device_info();
}  // namespace ks::cpu

#if KS_WITH_CUDA
namespace ks::cuda {
KS_BACKEND_OPS

CudaStatus status();
std::vector<DeviceInfo> devices();
Allocator& allocator(int index);
// Called once by the device's worker thread: selects the device and creates the thread's stream.
void thread_init(int index);
void synchronize();                                       // waits for the thread's stream
void upload(void* dst, const void* src, size_t bytes);    // host -> device, complete on return
void download(void* dst, const void* src, size_t bytes);  // device -> host, complete on return
void memset_bytes(void* dst, unsigned char value, size_t bytes);
}  // namespace ks::cuda
#endif

// The GSURE kernels (kintsugi/gsure.h), declared alike in both backend namespaces. coef holds
// (√ᾱ_b, ᾱ_b, 1 − ᾱ_b) per sample, each rounded once from double (1 − ᾱ stays accurate near ᾱ = 1);
// v_stride is per_sample or 0 (v shared by every sample).
#include "kintsugi/gsure.h"
#define KS_GSURE_BACKEND_OPS                                                                                       \
  void svd_noise(const float* ybar, const float* v, int64_t v_stride, const float* coef, int64_t n,                \
                 int64_t per_sample, RngKey key, float* out);                                                      \
  void gsure_probe(const float* xt, int64_t n, int64_t per_sample, int probes, float eps, RngKey key, float* plus, \
                   float* minus);                                                                                  \
  void gsure_terms(const GsureTermsArgs& a);

namespace ks::cpu {
KS_GSURE_BACKEND_OPS
}  // namespace ks::cpu
#if KS_WITH_CUDA
namespace ks::cuda {
KS_GSURE_BACKEND_OPS
}  // namespace ks::cuda
#endif

// The bootstrap views and the residual aggregation (kintsugi/bootstrap.h), declared alike in both
// backend namespaces; h and w are those of x. residual_aggregate takes r = 1 when f_lr is null.
#include "kintsugi/patch_grid.h"
#define KS_BOOTSTRAP_BACKEND_OPS                                                                       \
  void avg_pool(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r);              \
  void upsample_nearest(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r);      \
  void high_pass(const float* x, float* out, int64_t planes, int64_t h, int64_t w, int r);             \
  void patch_extract(const float* x, float* out, const PatchGrid& g, bool positions);                  \
  void patch_overlap_add(const float* patches, float* out, const PatchGrid& g);                        \
  void residual_aggregate(const float* f_lr, int r, const float* f_patch, const float* f0, float* out, \
                          const PatchGrid& g);                                                         \
  void batch_center(const float* x, float* out, int64_t n, int64_t per_sample);

namespace ks::cpu {
KS_BOOTSTRAP_BACKEND_OPS
}  // namespace ks::cpu
#if KS_WITH_CUDA
namespace ks::cuda {
KS_BOOTSTRAP_BACKEND_OPS
}  // namespace ks::cuda
#endif
