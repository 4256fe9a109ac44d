// AVX2 + FMA + F16C kernels of linear (called only when cpu_features reports them).
// Before any llaisys header: llaisys.h defines __C, which the intrinsics headers use as a
// parameter name.
#include <immintrin.h>

#include "ops/linear/cpu/linear_kernels.hpp"

namespace llaisys::ops::cpu {
namespace {

struct Avx2 {
    using reg = __m256;
    static constexpr int width = 8;
    static constexpr int mr = 2; // 4x2 accumulators + 4 weight regs + 1 fit in 16 ymm

    static constexpr bool tile_epilogue = false; // hsum per output
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load(const float *p) { return _mm256_loadu_ps(p); }
    static void store(float *p, reg v) { _mm256_storeu_ps(p, v); }
    static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static float hsum(reg v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float half_to_f32(uint16_t h) { return _cvtsh_ss(h); }
    static void halves_to_f32(const std::byte *p, float &a, float &b) { f16c_halves(p, a, b); }
    static uint16_t f32_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

    static __m128i load128(const void *p) {
        return _mm_loadu_si128(static_cast<const __m128i *>(p));
    }
    static void f32x(const float *p, reg *w) {
        for (int q = 0; q < 4; ++q) w[q] = load(p + 8 * q);
    }
    static void bf16x(const uint16_t *p, reg *w) { // bf16 is the top half of an f32
        for (int q = 0; q < 4; ++q)
            w[q] = _mm256_castsi256_ps(
                _mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p + 8 * q)), 16));
    }
    static void f16x(const uint16_t *p, reg *w) {
        for (int q = 0; q < 4; ++q) w[q] = _mm256_cvtph_ps(load128(p + 8 * q));
    }
    static void q8x(const int8_t *q, float d, reg *w) {
        const reg vd = _mm256_set1_ps(d);
        for (int i = 0; i < 4; ++i) {
            const __m128i b =
                _mm_loadl_epi64(static_cast<const __m128i *>(static_cast<const void *>(q + 8 * i)));
            w[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), vd);
        }
    }
    static void q4x(const uint8_t *q, float d, float c, reg *w) {
        const __m128i v = load128(q), mask = _mm_set1_epi8(0x0f);
        const __m128i lo = _mm_and_si128(v, mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
        const reg vd = _mm256_set1_ps(d), vc = _mm256_set1_ps(c);
        auto widen = [&](__m128i b) {
            return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), vd, vc);
        };
        w[0] = widen(lo);
        w[1] = widen(_mm_srli_si128(lo, 8));
        w[2] = widen(hi);
        w[3] = widen(_mm_srli_si128(hi, 8));
    }
};

} // namespace

namespace linear_avx2 {
void gemm(const KernelArgs *a, size_t count) { gemm_f32_act<Avx2>(a, count); }
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst) {
    rows_to_f32_any<Avx2>(src, src_row_bytes, dtype, rows, k, dst, ld_dst);
}
} // namespace linear_avx2

} // namespace llaisys::ops::cpu
