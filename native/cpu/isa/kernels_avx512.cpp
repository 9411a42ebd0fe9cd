// The CPU kernels for AVX-512F (32 zmm registers: an 8x32 micro-tile, 16 accumulators; 8 rows divide
// the network's channel counts). Compiled with -mavx512f -mavx2 -mfma by both builds; x86-64 only.
#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "kernels_avx512.cpp must be compiled with -mavx512f -mavx2 -mfma"
#endif
#define KS_ISA_TABLE kAvx512
#define KS_ISA_NAME "avx512"
#define KS_W 16
#define KS_MR 8
#define KS_NV 2
#define KS_KC 256
#define KS_MC 128
#define KS_NC 2048
#include "kernels.inc"
#endif
