// Which build of the CPU kernels (isa/kernels.h) this process uses: the best one the processor and
// the operating system support, or a lower one forced by KINTSUGI_CPU_ISA=sse|avx2|avx512 (for tests,
// and to compare variants). Chosen once, at the first use.
#pragma once
#include "isa/kernels.h"
#include "kintsugi/cpu_info.h"

namespace ks::cpu {

const isa::Kernels& kernels();

}  // namespace ks::cpu
