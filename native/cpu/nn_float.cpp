// The float instantiations of the network-op templates (native/cpu/<op>.h) that native/core's registry
// rows name through kintsugi/nn_backend.h, so core dispatches to them without including this backend's
// headers.
#include "kintsugi/nn_backend.h"
#include "attention.h"
#include "conv2d.h"
#include "groupnorm.h"
#include "groupnorm_silu.h"
#include "linear.h"
#include "silu.h"
#include "time_embedding.h"
#include "unet.h"
#include "upsample.h"

namespace ks::cpu {

template void conv2d_forward<float>(const float*, const float*, const float*, float*, const Conv2dShape&);
template void conv2d_backward<float>(const float*, const float*, const float*, float*, float*, float*,
                                     const Conv2dShape&);
template void groupnorm_forward<float>(const float*, const float*, const float*, float*, float*, float*,
                                       const GroupNormShape&);
template void groupnorm_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                        float*, float*, const GroupNormShape&);
template void groupnorm_silu_forward<float>(const float*, const float*, const float*, float*, float*, float*,
                                            const GroupNormShape&);
template void groupnorm_silu_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                             const float*, float*, float*, float*, const GroupNormShape&);
template void silu_forward<float>(const float*, float*, int64_t);
template void silu_backward<float>(const float*, const float*, float*, int64_t);
template void linear_forward<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                                     int64_t);
template void time_embedding<float>(const float*, float*, int64_t, int64_t);
template void attention_forward<float>(const float*, float*, float*, int64_t, int64_t, int64_t);
template void attention_backward<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void upsample2_forward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void upsample2_backward<float>(const float*, float*, int64_t, int64_t, int64_t);

void concat_channels_f32(const float* a, const float* b, float* out, int64_t n, int64_t ca, int64_t cb, int64_t hw) {
  CpuOps<float>::concat_channels(a, b, out, n, ca, cb, hw);
}

}  // namespace ks::cpu
