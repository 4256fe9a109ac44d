// AVX2 + FMA + F16C row kernel of self_attention (called only when cpu_features reports
// them). Before any llaisys header: llaisys.h defines __C, a parameter name in intrinsics.
#include <immintrin.h>

#include "ops/self_attention/cpu/self_attention_kernel.hpp"

namespace llaisys::ops::cpu {
namespace {

struct Avx2Ops {
    static const float *row(const float *src, float *, size_t) { return src; }

    static const float *row(const fp16_t *src, float *buf, size_t n) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                          reinterpret_cast<const __m128i *>(src + i))));
        for (; i < n; ++i) buf[i] = _cvtsh_ss(src[i].bits);
        return buf;
    }

    static const float *row(const bf16_t *src, float *buf, size_t n) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256i wide = _mm256_cvtepu16_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i)));
            _mm256_storeu_ps(buf + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
        }
        for (; i < n; ++i) {
            const uint32_t bits = uint32_t(src[i].bits) << 16;
            __builtin_memcpy(buf + i, &bits, 4);
        }
        return buf;
    }

    static float dot(const float *a, const float *b, size_t n) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        }
        if (i + 8 <= n) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
            i += 8;
        }
        const __m256 s = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float sum = _mm_cvtss_f32(h);
        for (; i < n; ++i) sum += a[i] * b[i];
        return sum;
    }

    static void axpy(float *y, float alpha, const float *x, size_t n) {
        const __m256 va = _mm256_set1_ps(alpha);
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i,
                             _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        for (; i < n; ++i) y[i] += alpha * x[i];
    }

    static void scale(float *y, float alpha, size_t n) {
        const __m256 va = _mm256_set1_ps(alpha);
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
        for (; i < n; ++i) y[i] *= alpha;
    }

    static float exp(float x) { return __builtin_expf(x); }
};

} // namespace

namespace self_attention_avx2 {

void attend_row(float *acc, const float *q, const float *k, const float *v, size_t n_keys,
                const AttentionArgs &a, float *scratch) {
    cpu::attend_row<Avx2Ops>(acc, q, k, v, n_keys, a, scratch);
}
void attend_row(float *acc, const float *q, const fp16_t *k, const fp16_t *v, size_t n_keys,
                const AttentionArgs &a, float *scratch) {
    cpu::attend_row<Avx2Ops>(acc, q, k, v, n_keys, a, scratch);
}
void attend_row(float *acc, const float *q, const bf16_t *k, const bf16_t *v, size_t n_keys,
                const AttentionArgs &a, float *scratch) {
    cpu::attend_row<Avx2Ops>(acc, q, k, v, n_keys, a, scratch);
}

void widen_row(const fp16_t *src, float *dst, size_t n) { Avx2Ops::row(src, dst, n); }
void widen_row(const bf16_t *src, float *dst, size_t n) { Avx2Ops::row(src, dst, n); }

} // namespace self_attention_avx2
} // namespace llaisys::ops::cpu
