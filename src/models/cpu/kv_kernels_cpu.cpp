#include "models/cpu/kv_kernels_cpu.hpp"

#include "core/dtype.hpp"
#include "device/cpu/cpu_features.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace llaisys::models::cpu {

void scatter_rows(std::byte *dst, const int64_t *idx, const std::byte *src, size_t n,
                  size_t row_bytes) {
    for (size_t i = 0; i < n; ++i)
        std::memcpy(dst + size_t(idx[i]) * row_bytes, src + i * row_bytes, row_bytes);
}

void gather_rows(std::byte *dst, const std::byte *src, const int64_t *idx, size_t n,
                 size_t row_bytes) {
    for (size_t i = 0; i < n; ++i)
        std::memcpy(dst + i * row_bytes, src + size_t(idx[i]) * row_bytes, row_bytes);
}

namespace {

// A row as f32: float rows are used in place, half rows are converted into buf.
template <typename T> const float *as_f32(const T *row, float *buf, size_t n) {
    if constexpr (std::is_same_v<T, float>) {
        return row;
    } else {
        for (size_t c = 0; c < n; ++c) buf[c] = to_f32(row[c]);
        return buf;
    }
}

// One task per (token, kv head): the query heads sharing that kv head read each key and
// value row once.
template <typename T>
void attention(T *out, const T *q, const T *k_cache, const T *v_cache, const int32_t *table,
               const int64_t *row, const int32_t *n_keys, size_t bs, const AttentionShape &s,
               float scale) {
    const size_t group = s.nh / s.nkvh;
    const ptrdiff_t tasks = ptrdiff_t(s.n * s.nkvh);
#pragma omp parallel num_threads(device::cpu::num_threads())
    {
        std::vector<float> qf(group * s.d), acc(group * s.dv), kbuf(s.d), vbuf(s.dv), scores;
#pragma omp for schedule(dynamic)
        for (ptrdiff_t t = 0; t < tasks; ++t) {
            const size_t i = size_t(t) / s.nkvh, kvh = size_t(t) % s.nkvh, h0 = kvh * group;
            const size_t nk = size_t(n_keys[i]);
            const int32_t *tab = table + row[i];
            for (size_t g = 0; g < group; ++g)
                for (size_t c = 0; c < s.d; ++c)
                    qf[g * s.d + c] = to_f32(q[(i * s.nh + h0 + g) * s.d + c]) * scale;
            scores.resize(group * nk);
            for (size_t j = 0; j < nk; ++j) {
                const size_t cell = size_t(tab[j / bs]) * bs + j % bs;
                const float *k = as_f32(k_cache + (cell * s.nkvh + kvh) * s.d, kbuf.data(), s.d);
                for (size_t g = 0; g < group; ++g) {
                    const float *qg = &qf[g * s.d];
                    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
                    for (size_t c = 0; c < s.d; ++c) dot += qg[c] * k[c];
                    scores[g * nk + j] = dot;
                }
            }
            for (size_t g = 0; g < group; ++g) { // softmax, normalized in place
                float *sg = &scores[g * nk];
                const float mx = nk ? *std::max_element(sg, sg + nk) : 0.f;
                float sum = 0.f;
                for (size_t j = 0; j < nk; ++j) sum += sg[j] = std::exp(sg[j] - mx);
                const float inv = nk ? 1.f / sum : 0.f;
                for (size_t j = 0; j < nk; ++j) sg[j] *= inv;
            }
            std::fill(acc.begin(), acc.end(), 0.f);
            for (size_t j = 0; j < nk; ++j) {
                const size_t cell = size_t(tab[j / bs]) * bs + j % bs;
                const float *v = as_f32(v_cache + (cell * s.nkvh + kvh) * s.dv, vbuf.data(), s.dv);
                for (size_t g = 0; g < group; ++g) {
                    float *ag = &acc[g * s.dv];
                    const float p = scores[g * nk + j];
#pragma omp simd
                    for (size_t c = 0; c < s.dv; ++c) ag[c] += p * v[c];
                }
            }
            for (size_t g = 0; g < group; ++g)
                for (size_t c = 0; c < s.dv; ++c)
                    out[(i * s.nh + h0 + g) * s.dv + c] = from_f32<T>(acc[g * s.dv + c]);
        }
    }
}

} // namespace

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const AttentionShape &s,
                     float scale, llaisysDataType_t dtype) {
    dispatch_float(dtype, "paged_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        attention(reinterpret_cast<T *>(out), reinterpret_cast<const T *>(q),
                  reinterpret_cast<const T *>(k_cache), reinterpret_cast<const T *>(v_cache),
                  table, row, n_keys, block_size, s, scale);
    });
}

} // namespace llaisys::models::cpu
