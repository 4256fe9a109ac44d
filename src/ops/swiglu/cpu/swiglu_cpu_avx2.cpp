// AVX2 + FMA + F16C swiglu (called only when cpu_features reports them): eight lanes with
// a polynomial exp, where the generic loop calls libm's expf per element. Before any
// llaisys header: llaisys.h defines __C, a parameter name in the intrinsics headers.
#include <immintrin.h>

#include "ops/exp_avx2.hpp"
#include "ops/swiglu/cpu/swiglu_cpu.hpp"

namespace llaisys::ops::cpu {
namespace {

// u * g * sigmoid(g); exp8 is +inf for very negative g, making the product exactly -0.
__m256 silu_times(__m256 g, __m256 u) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_div_ps(_mm256_mul_ps(u, g), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// Eight elements of each storage type <-> f32 lanes.
__m256 load8(const float *p) { return _mm256_loadu_ps(p); }
__m256 load8(const fp16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
}
__m256 load8(const bf16_t *p) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

void store8(float *p, __m256 v) { _mm256_storeu_ps(p, v); }
void store8(fp16_t *p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
void store8(bf16_t *p, __m256 v) {
    // Round to nearest even on the bit pattern; NaN keeps its sign and becomes quiet.
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, quiet, nan);
    // Pack 8 x u32 (each < 2^16) into 8 x u16: packus works per 128-bit lane.
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), packed);
}

template <typename T> void run(T *out, const T *gate, const T *up, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) store8(out + i, silu_times(load8(gate + i), load8(up + i)));
    if (i < n) { // the tail through a zero-padded stack block
        T g[8] = {}, u[8] = {}, o[8];
        for (size_t j = 0; i + j < n; ++j) {
            g[j] = gate[i + j];
            u[j] = up[i + j];
        }
        store8(o, silu_times(load8(g), load8(u)));
        for (size_t j = 0; i + j < n; ++j) out[i + j] = o[j];
    }
}

} // namespace

namespace swiglu_avx2 {
void swiglu(float *out, const float *gate, const float *up, size_t n) { run(out, gate, up, n); }
void swiglu(fp16_t *out, const fp16_t *gate, const fp16_t *up, size_t n) { run(out, gate, up, n); }
void swiglu(bf16_t *out, const bf16_t *gate, const bf16_t *up, size_t n) { run(out, gate, up, n); }
} // namespace swiglu_avx2
} // namespace llaisys::ops::cpu
