// Sixteen floats as one GCC vector, and the few operations the kernels written over it need.
// Each unit compiles them to its own registers (one zmm, two ymm or four xmm), so one source
// serves the generic, AVX2 and AVX-512 builds of a kernel. A unit with F16C or AVX-512
// includes <immintrin.h> before this header.
//
// Everything here has internal linkage: no function compiled for a newer instruction set can
// stand in for the generic one.
#pragma once

#include "core/dtype.hpp"

#include <cstring>

// Vectors are passed between inlined functions of one unit: no ABI is crossed. Left on for
// the including unit too (no push/pop): GCC reports it where the vectors are used.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace llaisys {
namespace {

using f32x16 = float __attribute__((vector_size(64)));
using f32x8 = float __attribute__((vector_size(32)));
using f32x4 = float __attribute__((vector_size(16)));
using i32x16 = int32_t __attribute__((vector_size(64)));
using u32x16 = uint32_t __attribute__((vector_size(64)));
using u16x16 = uint16_t __attribute__((vector_size(32)));
constexpr size_t kVec = 16;

inline float widen(float v) { return v; }
inline float widen(bf16_t v) { // not core/dtype.hpp's: that one has external linkage
    const uint32_t u = uint32_t(v.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float widen(fp16_t v) {
#if defined(__F16C__)
    return _cvtsh_ss(v.bits);
#else
    return f16_to_f32(v); // only the generic unit, which nothing newer can replace, calls it
#endif
}

// 16 consecutive elements as f32.
inline f32x16 load16(const float *p) {
    f32x16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline f32x16 load16(const bf16_t *p) { // bf16 is the top half of an f32
    u16x16 h;
    std::memcpy(&h, p, sizeof h);
    return (f32x16)(__builtin_convertvector(h, u32x16) << 16);
}
inline f32x16 load16(const fp16_t *p) {
#if defined(__AVX512F__)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
#elif defined(__F16C__)
    const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 8)));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    f32x16 v;
    for (size_t l = 0; l < kVec; ++l) v[l] = f16_to_f32(p[l]);
    return v;
#endif
}
inline void store16(float *p, const f32x16 &v) { std::memcpy(p, &v, sizeof v); }

inline float hsum(const f32x16 &v) {
    const f32x8 h8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                     __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const f32x4 h4 =
        __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
    return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

inline f32x16 max16(const f32x16 &a, const f32x16 &b) { return a > b ? a : b; }

inline float hmax(const f32x16 &v) {
    float m = v[0];
    for (size_t l = 1; l < kVec; ++l) m = v[l] > m ? v[l] : m;
    return m;
}

// exp(x) for x <= 0 (softmax arguments): Cody-Waite reduction by ln 2 and Cephes' degree-6
// polynomial, within 2 ulp; 0 below -87.3 (so a masked -inf gets no weight at all).
inline f32x16 exp16(const f32x16 &arg) {
    const f32x16 lo = f32x16{} - 87.3f;
    const f32x16 x = arg < lo ? lo : arg;
    const f32x16 round = f32x16{} + 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
    const f32x16 n = (x * 1.44269504089f + round) - round;
    f32x16 r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    f32x16 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const i32x16 bits = (__builtin_convertvector(n, i32x16) + 127) << 23;
    return arg < lo ? f32x16{} : p * (f32x16)bits;
}

} // namespace
} // namespace llaisys
