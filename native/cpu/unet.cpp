// Instantiates the UNet graph for the CPU backend (float and double).
#include "unet.h"

namespace ks {
template class UNetGraph<cpu::CpuOps<float>>;
template class UNetGraph<cpu::CpuOps<double>>;
}  // namespace ks
