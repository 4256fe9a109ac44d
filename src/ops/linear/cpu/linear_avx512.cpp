// AVX-512 kernels of linear (called only when cpu_features reports AVX-512): twice the
// lanes and 32 registers, so a tile carries 4 input rows instead of AVX2's 2.
// Before any llaisys header: llaisys.h defines __C, which the intrinsics headers use as a
// parameter name.
#include <immintrin.h>

#include "ops/linear/cpu/linear_kernels.hpp"

namespace llaisys::ops::cpu {
namespace {

struct Avx512 {
    using reg = __m512;
    static constexpr int width = 16;
    static constexpr int mr = 4; // 4x4 accumulators + 2 weight regs + 1 of 32 zmm

    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const float *p) { return _mm512_loadu_ps(p); }
    static void store(float *p, reg v) { _mm512_storeu_ps(p, v); }
    static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static float hsum(reg v) { return _mm512_reduce_add_ps(v); }

    // The 4 x 4 outputs of a whole tile from its accumulators (out at the tile's first
    // element, rows n apart): the 16 horizontal sums share their shuffles (45 operations, not
    // 16 x 9) and bias and conversion go 16 at a time. One sum per output had cost about as
    // much as 11 of the tile's 18 chunks at k = 576.
    static constexpr bool tile_epilogue = true;
    template <OutKind K>
    static void store_tile(const reg (&acc)[4][4], const float *bias, std::byte *out, size_t n) {
        // Sum t of the 16 is acc[t / 4][t % 4]. Pairs: each 128-bit lane [a02, b02, a13, b13].
        reg pair[8];
        for (int p = 0; p < 8; ++p) {
            const reg a = acc[p / 2][2 * (p % 2)], b = acc[p / 2][2 * (p % 2) + 1];
            pair[p] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        }
        // Quads: each 128-bit lane of quad[q] holds its share of sums 4q..4q+3.
        reg quad[4];
        for (int q = 0; q < 4; ++q)
            quad[q] = _mm512_add_ps(
                _mm512_shuffle_ps(pair[2 * q], pair[2 * q + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                _mm512_shuffle_ps(pair[2 * q], pair[2 * q + 1], _MM_SHUFFLE(3, 2, 3, 2)));
        // Fold the four 128-bit lanes: lane q of the result holds sums 4q..4q+3 (output row q).
        auto fold = [](reg a, reg b) {
            return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
        };
        reg sums = fold(fold(quad[0], quad[1]), fold(quad[2], quad[3]));
        if (bias) sums = _mm512_add_ps(sums, _mm512_broadcast_f32x4(_mm_loadu_ps(bias)));
        if constexpr (K == OutKind::F32) {
            float *o = reinterpret_cast<float *>(out);
            _mm_storeu_ps(o, _mm512_extractf32x4_ps(sums, 0));
            _mm_storeu_ps(o + n, _mm512_extractf32x4_ps(sums, 1));
            _mm_storeu_ps(o + 2 * n, _mm512_extractf32x4_ps(sums, 2));
            _mm_storeu_ps(o + 3 * n, _mm512_extractf32x4_ps(sums, 3));
        } else {
            // vcvtneps2bf16 rounds to nearest even as f32_to_bf16_bits does, but flushes f32
            // denormals to zero: a tail column (scalar) may keep one a tile column drops.
            const __m256i h = K == OutKind::BF16 ? (__m256i)_mm512_cvtneps_pbh(sums)
                                                 : _mm512_cvtps_ph(sums, _MM_FROUND_TO_NEAREST_INT);
            uint64_t rows[4];
            _mm256_storeu_si256(reinterpret_cast<__m256i *>(rows), h);
            for (size_t i = 0; i < 4; ++i) std::memcpy(out + i * n * 2, &rows[i], 8);
        }
    }
    static float half_to_f32(uint16_t h) { return _cvtsh_ss(h); }
    static void halves_to_f32(const std::byte *p, float &a, float &b) { f16c_halves(p, a, b); }
    static uint16_t f32_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

    static __m128i load128(const void *p) {
        return _mm_loadu_si128(static_cast<const __m128i *>(p));
    }
    static __m256i load256(const void *p) {
        return _mm256_loadu_si256(static_cast<const __m256i *>(p));
    }
    static void f32x(const float *p, reg *w) {
        w[0] = load(p);
        w[1] = load(p + 16);
    }
    static void bf16x(const uint16_t *p, reg *w) { // bf16 is the top half of an f32
        for (int q = 0; q < 2; ++q)
            w[q] = _mm512_castsi512_ps(
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p + 16 * q)), 16));
    }
    static void f16x(const uint16_t *p, reg *w) {
        w[0] = _mm512_cvtph_ps(load256(p));
        w[1] = _mm512_cvtph_ps(load256(p + 16));
    }
    static void q8x(const int8_t *q, float d, reg *w) {
        const reg vd = _mm512_set1_ps(d);
        w[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load128(q))), vd);
        w[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load128(q + 16))), vd);
    }
    // The 16 values a nibble stands for (d*i + c, the same fma as widening each nibble)
    // in one register, then one permute per 16 weights: vpermps reads only the low 4 bits
    // of each index, so the low nibbles need no mask.
    static void q4x(const uint8_t *q, float d, float c, reg *w) {
        const reg iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const reg table = _mm512_fmadd_ps(iota, _mm512_set1_ps(d), _mm512_set1_ps(c));
        const __m512i bytes = _mm512_cvtepu8_epi32(load128(q));
        w[0] = _mm512_permutexvar_ps(bytes, table);
        w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);
    }
};

// Two bf16 products per f32 lane per instruction, exact products and f32 sums: twice the
// arithmetic of widening and FMA, and no widening work.
struct Bf16Dot {
    using xelem = uint16_t;
    struct W {
        __m512bh r;
    };
    static void load_w(const std::byte *p, W &w) { w.r = (__m512bh)_mm512_loadu_si512(p); }
    static __m512 madd(const W &w, const uint16_t *x, __m512 acc) {
        return _mm512_dpbf16_ps(acc, w.r, (__m512bh)_mm512_loadu_si512(x));
    }
    static float x_at(const uint16_t *x, size_t j) { return bf16_bits_to_f32(x[j]); }
};

} // namespace

namespace linear_avx512 {
void gemm_bf16_dot(const KernelArgs *a, size_t count) {
    gemm_format<Avx512, Bf16Dot, BF16W>(a, count);
}
void gemm(const KernelArgs *a, size_t count) { gemm_f32_act<Avx512>(a, count); }
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst) {
    rows_to_f32_any<Avx512>(src, src_row_bytes, dtype, rows, k, dst, ld_dst);
}
} // namespace linear_avx512

} // namespace llaisys::ops::cpu
