// AVX2 + FMA + F16C row kernel of self_attention (called only when cpu_features reports
// them). Before any llaisys header: llaisys.h defines __C, a parameter name in intrinsics.
#include <immintrin.h>

#include "ops/exp_avx2.hpp"
#include "ops/self_attention/cpu/self_attention_kernel.hpp"

namespace llaisys::ops::cpu {
namespace {

// Widens one row of 16-bit floats.
void widen(const fp16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i))));
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i].bits);
}

void widen(const bf16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i wide =
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    for (; i < n; ++i) {
        const uint32_t bits = uint32_t(src[i].bits) << 16;
        __builtin_memcpy(dst + i, &bits, 4);
    }
}

float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

struct Avx2Ops {
    static Rows rows(const float *src, ptrdiff_t stride, size_t, size_t, float *) {
        return {src, stride};
    }

    template <typename T>
    static Rows rows(const T *src, ptrdiff_t stride, size_t nb, size_t n, float *buf) {
        for (size_t j = 0; j < nb; ++j) widen(src + ptrdiff_t(j) * stride, buf + j * n, n);
        return {buf, ptrdiff_t(n)};
    }

    // Four keys at a time: four independent FMA chains share each load of q.
    static void scores(const float *q, Rows keys, size_t nb, size_t d, float *out) {
        const size_t d8 = d / 8 * 8;
        size_t j = 0;
        for (; j + 4 <= nb; j += 4) {
            const float *k0 = keys.data + ptrdiff_t(j) * keys.stride;
            const float *k1 = k0 + keys.stride, *k2 = k1 + keys.stride, *k3 = k2 + keys.stride;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = 0; i < d8; i += 8) {
                const __m256 qv = _mm256_loadu_ps(q + i);
                s0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), s0);
                s1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), s1);
                s2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), s2);
                s3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), s3);
            }
            // hadd twice leaves [s0, s1, s2, s3] partial sums in each 128-bit half.
            const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
            _mm_storeu_ps(out + j,
                          _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
            for (size_t i = d8; i < d; ++i) {
                out[j] += q[i] * k0[i];
                out[j + 1] += q[i] * k1[i];
                out[j + 2] += q[i] * k2[i];
                out[j + 3] += q[i] * k3[i];
            }
        }
        for (; j < nb; ++j) {
            const float *key = keys.data + ptrdiff_t(j) * keys.stride;
            __m256 s = _mm256_setzero_ps();
            for (size_t i = 0; i < d8; i += 8)
                s = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(key + i), s);
            float sum = hsum(s);
            for (size_t i = d8; i < d; ++i) sum += q[i] * key[i];
            out[j] = sum;
        }
    }

    static float exp_sum(float *x, size_t nb, float max) {
        const __m256 vmax = _mm256_set1_ps(max);
        __m256 vsum = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 8 <= nb; j += 8) {
            const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmax));
            _mm256_storeu_ps(x + j, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        float sum = hsum(vsum);
        for (; j < nb; ++j) {
            x[j] = __builtin_expf(x[j] - max);
            sum += x[j];
        }
        return sum;
    }

    static void scale(float *y, float alpha, size_t n) {
        const __m256 va = _mm256_set1_ps(alpha);
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
        for (; i < n; ++i) y[i] *= alpha;
    }

    // Accumulators stay in registers across the block, 32 output lanes at a time.
    static void accumulate(float *acc, const float *p, Rows values, size_t nb, size_t dv) {
        size_t i = 0;
        for (; i + 32 <= dv; i += 32) {
            __m256 a0 = _mm256_loadu_ps(acc + i), a1 = _mm256_loadu_ps(acc + i + 8);
            __m256 a2 = _mm256_loadu_ps(acc + i + 16), a3 = _mm256_loadu_ps(acc + i + 24);
            for (size_t j = 0; j < nb; ++j) {
                const float *value = values.data + ptrdiff_t(j) * values.stride + i;
                const __m256 pj = _mm256_set1_ps(p[j]);
                a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(value), a0);
                a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(value + 8), a1);
                a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(value + 16), a2);
                a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(value + 24), a3);
            }
            _mm256_storeu_ps(acc + i, a0);
            _mm256_storeu_ps(acc + i + 8, a1);
            _mm256_storeu_ps(acc + i + 16, a2);
            _mm256_storeu_ps(acc + i + 24, a3);
        }
        for (; i + 8 <= dv; i += 8) {
            __m256 a = _mm256_loadu_ps(acc + i);
            for (size_t j = 0; j < nb; ++j)
                a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]),
                                    _mm256_loadu_ps(values.data + ptrdiff_t(j) * values.stride + i),
                                    a);
            _mm256_storeu_ps(acc + i, a);
        }
        for (; i < dv; ++i) {
            float a = acc[i];
            for (size_t j = 0; j < nb; ++j)
                a += p[j] * values.data[ptrdiff_t(j) * values.stride + i];
            acc[i] = a;
        }
    }
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

void widen_row(const fp16_t *src, float *dst, size_t n) { widen(src, dst, n); }
void widen_row(const bf16_t *src, float *dst, size_t n) { widen(src, dst, n); }

} // namespace self_attention_avx2
} // namespace llaisys::ops::cpu
