// The portable baseline of the CPU kernels: whatever the target's default instruction set is (SSE2 on
// x86-64, NEON on arm64). Always built; the fallback when nothing better is available or allowed.
#define KS_ISA_TABLE kBase
#define KS_ISA_NAME "sse"
#define KS_W 4
#define KS_MR 6
#define KS_NV 2
#define KS_KC 256
#define KS_MC 96
#define KS_NC 2048
#include "kernels.inc"
