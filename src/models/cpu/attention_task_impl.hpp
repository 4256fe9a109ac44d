// The body of an attention task, included by one .cpp per instruction set (which includes
// <immintrin.h> first when it has one). Everything here has internal linkage, so no
// function compiled for a newer instruction set can stand in for the generic one.
#pragma once

#include "core/dtype.hpp"
#include "models/cpu/attention_task.hpp"

#include <cmath>
#include <cstring>

namespace llaisys::models::cpu {
namespace {

inline float widen(float v) { return v; }
inline float widen(bf16_t v) {
    const uint32_t u = uint32_t(v.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float widen(fp16_t v) {
#if defined(__F16C__)
    return _cvtsh_ss(v.bits);
#else
    return f16_to_f32(v);
#endif
}

// q . k over n elements: 16 independent lanes (one or two vector registers), summed as a
// tree so the reduction is short.
template <typename T> float dot(const float *q, const T *k, size_t n) {
    constexpr size_t L = 16;
    float part[L] = {};
    size_t c = 0;
    for (; c + L <= n; c += L)
        for (size_t l = 0; l < L; ++l) part[l] += q[c + l] * widen(k[c + l]);
    float tail = 0.f;
    for (; c < n; ++c) tail += q[c] * widen(k[c]);
    for (size_t l = 0; l < 8; ++l) part[l] += part[l + 8];
    for (size_t l = 0; l < 4; ++l) part[l] += part[l + 4];
    return (part[0] + part[2]) + (part[1] + part[3]) + tail;
}

// Calls f(j, row) for every key j, row being its [nkvh, width] cell row at kv head kvh; the
// block table is walked block by block (no division per key).
template <typename T, typename F>
void for_each_key(const AttentionTask &a, const T *cache, size_t width, F &&f) {
    const size_t bs = a.block_size;
    for (size_t j = 0, b = 0; j < a.n_keys; ++b) {
        const size_t base = size_t(a.table[b]) * bs;
        for (size_t o = 0; o < bs && j < a.n_keys; ++o, ++j)
            f(j, cache + ((base + o) * a.nkvh + a.kvh) * width);
    }
}

template <typename T> void attention_task(const AttentionTask &a) {
    const T *k_cache = reinterpret_cast<const T *>(a.k_cache);
    const T *v_cache = reinterpret_cast<const T *>(a.v_cache);
    const size_t nk = a.n_keys, dv = a.dv;
    for_each_key(a, k_cache, a.d, [&](size_t j, const T *k) {
        for (size_t g = 0; g < a.group; ++g) a.scores[g * nk + j] = dot(a.q + g * a.d, k, a.d);
    });
    for (size_t g = 0; g < a.group; ++g) { // softmax over the keys, in place
        float *s = a.scores + g * nk;
        float mx = -INFINITY, sum = 0.f;
        for (size_t j = 0; j < nk; ++j) mx = s[j] > mx ? s[j] : mx;
        for (size_t j = 0; j < nk; ++j) sum += s[j] = std::exp(s[j] - mx);
        const float inv = nk ? 1.f / sum : 0.f;
        for (size_t j = 0; j < nk; ++j) s[j] *= inv;
    }
    // acc = p . v, 16 output columns at a time held in registers across the keys.
    constexpr size_t L = 16;
    for (size_t g = 0; g < a.group; ++g) {
        const float *p = a.scores + g * nk;
        float *acc = a.acc + g * dv;
        size_t c = 0;
        for (; c + L <= dv; c += L) {
            float part[L] = {};
            for_each_key(a, v_cache, dv, [&](size_t j, const T *v) {
                for (size_t l = 0; l < L; ++l) part[l] += p[j] * widen(v[c + l]);
            });
            for (size_t l = 0; l < L; ++l) acc[c + l] = part[l];
        }
        for (; c < dv; ++c) {
            float sum = 0.f;
            for_each_key(a, v_cache, dv, [&](size_t j, const T *v) { sum += p[j] * widen(v[c]); });
            acc[c] = sum;
        }
    }
}

AttentionTaskFn attention_task_for(llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return &attention_task<float>;
    case LLAISYS_DTYPE_F16:
        return &attention_task<fp16_t>;
    case LLAISYS_DTYPE_BF16:
        return &attention_task<bf16_t>;
    default:
        return nullptr;
    }
}

} // namespace
} // namespace llaisys::models::cpu
