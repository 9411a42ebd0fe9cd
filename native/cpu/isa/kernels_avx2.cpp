// The CPU kernels for AVX2 + FMA (16 ymm registers: a 6x16 micro-tile, 12 accumulators). Compiled with
// -mavx2 -mfma by both builds (binding.gyp, CMakeLists.txt); x86-64 only.
#if defined(__x86_64__)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels_avx2.cpp must be compiled with -mavx2 -mfma"
#endif
#define KS_ISA_TABLE kAvx2
#define KS_ISA_NAME "avx2"
#define KS_W 8
#define KS_MR 6
#define KS_NV 2
#define KS_KC 256
#define KS_MC 96
#define KS_NC 2048
#include "kernels.inc"
#endif
