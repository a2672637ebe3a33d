// IEEE float16 storage: the type, and exact widening to float / round-to-nearest-even
// narrowing back, a block of elements at a time.
//
// float16 tensors are never computed on in float16: a rule's loop runs on float (see
// loop.hpp's run_widened), as torch's fused CPU kernels compute reduced-precision params in
// float ("opmath"). Conversions use F16C (vcvtph2ps / vcvtps2ph, eight at a time) where the
// level is compiled for it, else a portable branch-free bit conversion that the compiler
// vectorizes with integer instructions. `_Float16` is not used: gcc 12 has no vector mode for
// it without AVX512-FP16 (its conversion loops stay scalar, calls into libgcc at baseline),
// and MSVC has no such type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__F16C__) || (defined(_MSC_VER) && !defined(__clang__) && defined(__AVX2__))
#define FASTDESCENT_F16C 1
#include <immintrin.h>
#endif

#ifndef FASTDESCENT_ARCH
#define FASTDESCENT_ARCH baseline
#endif

namespace fastdescent {

// One IEEE 754 binary16 number, as NumPy's float16 and torch's float16 store it.
struct float16 {
  std::uint16_t bits;
};

inline namespace FASTDESCENT_ARCH {

inline std::uint32_t bits_of(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

inline float float_from_bits(std::uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// The portable conversions follow the method of Marat Dukhan's FP16 library (the one
// c10::Half uses): float arithmetic does the exponent rebias and the rounding, so there is
// no branch and the loops vectorize.

// float16 -> float, exact (subnormals, infinities and NaN included).
inline float widen_portable(std::uint16_t h) {
  const std::uint32_t w = std::uint32_t(h) << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;  // exponent and mantissa at the top, sign shifted out
  // Normal numbers (and inf / NaN): exponent and mantissa moved into float's fields with the
  // exponent 224 too high (so 31 lands on 255), then scaled down by an exact 2^-112.
  const float normal = float_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormals: the mantissa m as 0.5 + m * 2^-24, minus 0.5.
  const float subnormal = float_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  // A mask, not a branch or a select: gcc vectorizes this loop only without control flow.
  const std::uint32_t is_subnormal = 0u - std::uint32_t(two_w < (1u << 27));
  const std::uint32_t magnitude =
      (bits_of(subnormal) & is_subnormal) | (bits_of(normal) & ~is_subnormal);
  return float_from_bits(sign | magnitude);
}

// float -> float16, rounded to nearest, ties to even; overflow gives infinity, NaN a NaN.
inline std::uint16_t narrow_portable(float f) {
  const std::uint32_t w = bits_of(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  // Adding a power of two whose exponent sits 13 binades (float16's missing mantissa bits)
  // above |f|'s makes the float adder round |f| to float16's precision, to nearest even;
  // below float16's smallest normal exponent the addend stays fixed, which rounds to
  // float16's subnormal spacing. The scaling by 2^112 * 2^-110 turns overflow into inf.
  const std::uint32_t bias = std::max(shl1_w & 0xFF000000u, 0x71000000u);
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  base = float_from_bits((bias >> 1) + 0x07800000u) + base;
  const std::uint32_t bits = bits_of(base);
  const std::uint32_t exponent = (bits >> 13) & 0x00007C00u;
  const std::uint32_t mantissa = bits & 0x00000FFFu;
  const std::uint32_t is_nan = 0u - std::uint32_t(shl1_w > 0xFF000000u);
  const std::uint32_t magnitude = (0x7E00u & is_nan) | ((exponent + mantissa) & ~is_nan);
  return static_cast<std::uint16_t>((sign >> 16) | magnitude);
}

// out[i] = float(in[i]) for i in [0, n).
inline void widen(const float16* in, float* out, std::int64_t n) {
  std::int64_t i = 0;
#if defined(FASTDESCENT_F16C)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
#endif
#if defined(FASTDESCENT_OPENMP)
#pragma omp simd
#endif
  for (std::int64_t j = i; j < n; ++j) out[j] = widen_portable(in[j].bits);
}

// out[i] = in[i] rounded to float16 (nearest, ties to even) for i in [0, n).
inline void narrow(const float* in, float16* out, std::int64_t n) {
  std::int64_t i = 0;
#if defined(FASTDESCENT_F16C)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
#endif
#if defined(FASTDESCENT_OPENMP)
#pragma omp simd
#endif
  for (std::int64_t j = i; j < n; ++j) out[j].bits = narrow_portable(in[j]);
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
