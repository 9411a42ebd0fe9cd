// The public op API: validates arguments (errors name the argument, the expected and the actual
// value), then queues the work on the tensor's device. Outputs are passed in, so callers (and the
// golden tests, with guarded outputs) decide where results go.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include "kintsugi/tensor.h"

namespace ks {

struct RngKey {
  uint64_t seed = 0, offset = 0, stream = 0;
};

void fill(const Tensor& out, float value);
void randn(const Tensor& out, RngKey key);
void uniform(const Tensor& out, float low, float high, RngKey key);
// The raw uint32 stream, written bit for bit into out's float32 storage (for tests and interop).
void random_bits(const Tensor& out, RngKey key);
void copy(const Tensor& src, const Tensor& dst);  // any pair of devices, same shape
void add(const Tensor& a, const Tensor& b, const Tensor& out);
void scale(const Tensor& a, float s, const Tensor& out);
void sum(const Tensor& a, const Tensor& out);  // out has one element

// Sum of squares of all elements into a one-element out (the squared global gradient norm).
void sum_squares(const Tensor& a, const Tensor& out);

struct AdamWConfig {
  float lr = 1e-4f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  int64_t step = 1;       // 1-based, for the bias corrections
  float max_norm = 0.0f;  // > 0: scale gradients by min(1, max_norm / (norm + 1e-6))
};
// One AdamW step (PyTorch's formulation: decoupled weight decay, bias-corrected moments) over flat
// arrays. sumsq is the one-element tensor from sum_squares(grads), read on the device when clipping,
// so clipping needs no host synchronisation.
void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v, const Tensor& sumsq,
           const AdamWConfig& config);
// ema = decay * ema + (1 - decay) * params.
void ema_update(const Tensor& ema, const Tensor& params, float decay);

// out[b, :] = sum_k coef_k[b] * x_k[b, :] over 1 to 3 terms, with per-sample coefficients (tensors of
// one value per sample, the first dimension of out): noising, prediction-target conversions and every
// sampler update are this one op. Inputs may alias out.
void combine(const Tensor& out, const std::vector<std::pair<Tensor, Tensor>>& terms);

// out = min(max(a, low), high) elementwise (NaN stays NaN).
void clamp(const Tensor& a, float low, float high, const Tensor& out);

// Degradation operators (lib/corruption, docs/corruption.md). out = a * b elementwise (same shape):
// mask operators and their SVD-domain projections.
void mul(const Tensor& a, const Tensor& b, const Tensor& out);
// Block averaging by k in its SVD basis: per k x k block of x [N, C, H, W] (H, W multiples of k), the
// orthonormal Helmert coefficients, coefficient 0 = block sum / k. `out` [N, C, H, W] holds every
// coefficient in plane-major order ([N, C, k*k, H/k, W/k] in memory), or out [N, C, H/k, W/k] holds
// coefficient 0 only (the observed one). Everything is multiplied by `scale`.
void block_average_vt(const Tensor& x, int k, float scale, const Tensor& out);
// The inverse (V c): c is [N, C, H, W] (every coefficient) or [N, C, H/k, W/k] (coefficient 0, the
// others taken as zero); out is [N, C, H, W]; times `scale`.
void block_average_v(const Tensor& c, int k, float scale, const Tensor& out);
// Orthonormal 2-D DFT (forward e^{-2 pi i ...}, or inverse) of x [N, 2, H, W]: channel 0 real,
// channel 1 imaginary, H and W powers of two up to 2048. out may alias x.
void fft2(const Tensor& x, bool inverse, const Tensor& out);

// Host transfer. `write_host` takes ownership of the data; `read_host` calls back on a worker thread.
void write_host(const Tensor& dst, std::vector<float> data);
void read_host(const Tensor& src, std::function<void(std::vector<float>&&, const std::string* error)> done);
// Calls back with whether the guard bytes after a guarded tensor are intact.
void check_guard(const Tensor& t, std::function<void(bool intact, const std::string* error)> done);
// Calls back when every task queued on `device` so far has finished.
void synchronize(const Device& device, std::function<void(const std::string* error)> done);
// Gives the device allocator's cached blocks back, on the device's queue (cudaFree blocks the calling
// thread until the device is idle); calls back when done.
void empty_cache(const Device& device, std::function<void(const std::string* error)> done);
// For tests of error propagation: queues a task on t's device that fails with `message`, marking t as
// failed, exactly as a kernel or allocation failure inside queued work would.
void fail_task(const Tensor& t, const std::string& message);

}  // namespace ks
