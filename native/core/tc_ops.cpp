// mma_check: the tensor-core wrapper (cuda/mma.cuh) alone on one warp, called by name. The golden
// table lists it first, so GPU first light (bench/first-light/kernels.mjs) checks mma.sync and
// ldmatrix against the CPU before any kernel that uses them. variant: 0 BF16 m16n8k16, 1 TF32 m16n8k8,
// 2 BF16 with ldmatrix.x4 + x2.trans, 3 BF16 with ldmatrix.x4 + x2. Inputs a [16, K], b [K, 8],
// c [16, 8] (K = 8 for TF32, else 16); output d [16, 8] = round(a) round(b) + c.
#include <string>
#include "registry.h"

namespace ks {
// The same signature in both backends (cpu/mma_check.cpp, cuda/mma_check.cu), declared here rather than
// through a backend's private header: core sees the backends only through declarations.
namespace cpu {
void mma_check(int variant, const float* a, const float* b, const float* c, float* d);
}
#if KS_WITH_CUDA
namespace cuda {
void mma_check(int variant, const float* a, const float* b, const float* c, float* d);
}
#endif
namespace {

KS_GENERIC_OP(kMmaCheck, "mma_check", cpu::mma_check, KS_CUDA_FN(mma_check), mma_check_call);
void mma_check_call(const OpCall& call) {
  Check c("mma_check");
  const int variant = static_cast<int>(attr(call, c.op(), "variant", 0, 3));
  const int64_t K = variant == 1 ? 8 : 16;
  const auto t = call_tensors(c, call, {16 * K, K * 8, 128}, {128});
  dispatch(kMmaCheck, c, variant, t.in[0], t.in[1], t.in[2], t.out[0]);
}

}  // namespace
}  // namespace ks
