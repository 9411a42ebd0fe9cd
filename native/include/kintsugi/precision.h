// The operand precision of the convolutions (issue #13): FP32 everywhere is the exact path; on tensor
// cores the operands are rounded to BF16 (8 significant bits, round to nearest even, as cvt.rn.bf16x2.f32)
// or TF32 (11 significant bits, round to nearest with ties away from zero, as cvt.rna.tf32.f32), the
// products are exact in FP32 and accumulated in FP32. Master weights, gradients and optimiser state stay
// FP32. The same bit-level rounding serves the CPU reference's rounding mode (cpu/round_operands.cpp) and
// the CUDA emulator's conversions (cuda/mma.cuh), so both round exactly as the GPU does.
#pragma once
#include <cstdint>
#include <cstring>

namespace ks {

enum class Precision : int {
  fp32 = 0,  // FP32 operands and arithmetic (SIMT kernels on CUDA): the exact path
  bf16 = 1,  // BF16 operands, FP32 accumulation (tensor cores): the GPU default of the UNet
  tf32 = 2,  // TF32 operands, FP32 accumulation (tensor cores)
};

inline const char* precision_name(Precision p) {
  return p == Precision::bf16 ? "bf16" : p == Precision::tf32 ? "tf32" : "fp32";
}

// Unit roundoff of the operand rounding (2^-p for p significant bits): the error model's u.
inline double precision_unit_roundoff(Precision p) {
  return p == Precision::bf16 ? 1.0 / 256 : p == Precision::tf32 ? 1.0 / 2048 : 1.0 / 16777216;
}

// The BF16 bits (upper half of the float) of x rounded to nearest even; NaN stays a quiet NaN.
inline uint16_t bf16_bits_rn(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float round_bf16(float x) { return bf16_to_float(bf16_bits_rn(x)); }

// x rounded to TF32 (10 stored mantissa bits, the low 13 bits zero), nearest with ties away from zero.
inline float round_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // finite: may round up to inf
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float round_operand(float x, Precision p) {
  return p == Precision::bf16 ? round_bf16(x) : p == Precision::tf32 ? round_tf32(x) : x;
}

}  // namespace ks
