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

template <typename T>
void attention(T *out, const T *q, const T *k_cache, const T *v_cache, const int32_t *table,
               const int64_t *row, const int32_t *n_keys, size_t bs, const AttentionShape &s,
               float scale) {
    const size_t group = s.nh / s.nkvh;
    const ptrdiff_t tasks = ptrdiff_t(s.n * s.nh);
#pragma omp parallel num_threads(device::cpu::num_threads())
    {
        std::vector<float> qf(s.d), acc(s.dv), scores;
#pragma omp for schedule(dynamic)
        for (ptrdiff_t t = 0; t < tasks; ++t) {
            const size_t i = size_t(t) / s.nh, h = size_t(t) % s.nh, kvh = h / group;
            const size_t nk = size_t(n_keys[i]);
            const int32_t *tab = table + row[i];
            const T *qrow = q + (i * s.nh + h) * s.d;
            for (size_t c = 0; c < s.d; ++c) qf[c] = to_f32(qrow[c]) * scale;
            scores.resize(nk);
            float mx = -INFINITY;
            for (size_t j = 0; j < nk; ++j) {
                const size_t cell = size_t(tab[j / bs]) * bs + j % bs;
                const T *krow = k_cache + (cell * s.nkvh + kvh) * s.d;
                float dot = 0.f;
#pragma omp simd reduction(+ : dot)
                for (size_t c = 0; c < s.d; ++c) dot += qf[c] * to_f32(krow[c]);
                scores[j] = dot;
                mx = std::max(mx, dot);
            }
            float sum = 0.f;
            for (size_t j = 0; j < nk; ++j) sum += scores[j] = std::exp(scores[j] - mx);
            std::fill(acc.begin(), acc.end(), 0.f);
            for (size_t j = 0; j < nk; ++j) {
                const size_t cell = size_t(tab[j / bs]) * bs + j % bs;
                const T *vrow = v_cache + (cell * s.nkvh + kvh) * s.dv;
                const float p = scores[j];
#pragma omp simd
                for (size_t c = 0; c < s.dv; ++c) acc[c] += p * to_f32(vrow[c]);
            }
            T *orow = out + (i * s.nh + h) * s.dv;
            const float inv = nk ? 1.f / sum : 0.f;
            for (size_t c = 0; c < s.dv; ++c) orow[c] = from_f32<T>(acc[c] * inv);
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
