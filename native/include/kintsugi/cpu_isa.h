// Which instruction-set variant of the CPU kernels this process uses (native/cpu/isa.cpp), for
// buildInfo() and the addon's load-time check of KINTSUGI_CPU_ISA.
#pragma once
#include <string>

namespace ks::cpu {

// "sse" (the portable baseline: SSE2 on x86-64, NEON on arm64), "avx2" or "avx512".
const char* cpu_isa_name();
// The variants this processor can run, lowest first ("sse,avx2,avx512" on an AVX-512 machine).
std::string cpu_isa_supported();
// Empty, or why KINTSUGI_CPU_ISA could not be honoured (an unknown name, or a level this processor
// lacks): the addon refuses to load with this message rather than run something not asked for.
const std::string& cpu_isa_error();

}  // namespace ks::cpu
