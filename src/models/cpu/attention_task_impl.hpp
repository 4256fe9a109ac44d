// The body of an attention task, included by one .cpp per instruction set (which includes
// <immintrin.h> first when it has one), written once over core/vec16.hpp's vectors.
// Everything here has internal linkage, so no function compiled for a newer instruction set
// can stand in for the generic one.
#pragma once

#include "core/vec16.hpp"
#include "models/cpu/attention_task.hpp"

#include <type_traits>

namespace llaisys::models::cpu {
namespace {

// Calls f(j, row) for the task's keys (j counted from first_key), row being its [nkvh, width] cell
// row at kv head kvh; the block table is walked block by block (no division per key). Each row of
// the next block is prefetched as the same row of this one is read: rows of one kv head lie nkvh
// rows apart in blocks scattered over the cache, and waiting on their loads was most of the
// attention time of a decode step at batch 32 (the step fell from 75 to 66 ms with the prefetch).
// Only the first walk over a cache prefetches (prefetch set); later walks find the rows cached.
template <typename T, typename F>
void for_each_key(const AttentionTask &a, const T *cache, size_t width, bool prefetch, F &&f) {
    const size_t bs = a.block_size, end = a.first_key + a.n_keys, blocks = (end + bs - 1) / bs;
    const size_t stride = a.nkvh * width; // elements from one cell's row to the next
    auto block_start = [&](size_t b) {
        return cache + size_t(a.table[b]) * bs * stride + a.kvh * width;
    };
    for (size_t key = a.first_key, b = key / bs; key < end; ++b) {
        const T *rows = block_start(b);
        const T *next = prefetch && b + 1 < blocks ? block_start(b + 1) : nullptr;
        for (size_t o = key % bs; o < bs && key < end; ++o, ++key) {
            if (next)
                for (size_t off = 0; off < width * sizeof(T); off += 64)
                    __builtin_prefetch(reinterpret_cast<const char *>(next + o * stride) + off);
            f(key - a.first_key, rows + o * stride);
        }
    }
}

// s[g * n_keys + j] = q_g . k_j for NG query heads: each key row is widened once for all NG
// heads, whose partial sums stay in registers.
template <int NG, typename T>
void head_scores(const AttentionTask &a, const T *k_cache, const float *q, float *s,
                 bool prefetch) {
    const size_t d = a.d, full = d / kVec * kVec;
    for_each_key(a, k_cache, d, prefetch, [&](size_t j, const T *k) {
        f32x16 acc[NG] = {};
        for (size_t c = 0; c < full; c += kVec) {
            const f32x16 kc = load16(k + c);
            for (int g = 0; g < NG; ++g) acc[g] += load16(q + g * d + c) * kc;
        }
        for (int g = 0; g < NG; ++g) {
            float v = hsum(acc[g]);
            for (size_t c = full; c < d; ++c) v += q[g * d + c] * widen(k[c]);
            s[g * a.n_keys + j] = v;
        }
    });
}

// out[g] = sum_j p[g * n_keys + j] v_j for NG heads, 16 columns at a time held in registers
// across the keys.
template <int NG, typename T>
void head_values(const AttentionTask &a, const T *v_cache, const float *p, float *out,
                 bool prefetch) {
    const size_t dv = a.dv, nk = a.n_keys, full = dv / kVec * kVec;
    for (size_t c = 0; c < full; c += kVec) {
        f32x16 acc[NG] = {};
        for_each_key(a, v_cache, dv, prefetch && c == 0, [&](size_t j, const T *v) {
            const f32x16 vc = load16(v + c);
            for (int g = 0; g < NG; ++g) acc[g] += p[g * nk + j] * vc;
        });
        for (int g = 0; g < NG; ++g) store16(out + g * dv + c, acc[g]);
    }
    for (size_t c = full; c < dv; ++c) {
        float acc[NG] = {};
        for_each_key(a, v_cache, dv, prefetch && c == 0, [&](size_t j, const T *v) {
            for (int g = 0; g < NG; ++g) acc[g] += p[g * nk + j] * widen(v[c]);
        });
        for (int g = 0; g < NG; ++g) out[g * dv + c] = acc[g];
    }
}

// Replaces s[0, n) by exp(s - max s); returns max s and the sum.
inline void exp_shifted(float *s, size_t n, float &max, float &sum) {
    const size_t full = n / kVec * kVec;
    float mx = -__builtin_inff();
    for (size_t j = 0; j < full; j += kVec) {
        const float m = hmax(load16(s + j));
        mx = m > mx ? m : mx;
    }
    for (size_t j = full; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
    f32x16 total = {};
    for (size_t j = 0; j < full; j += kVec) {
        const f32x16 e = exp16(load16(s + j) - mx);
        store16(s + j, e);
        total += e;
    }
    float tail = 0.f;
    for (size_t j = full; j < n; ++j) {
        f32x16 x = {};
        x[0] = s[j] - mx;
        tail += s[j] = exp16(x)[0];
    }
    max = mx;
    sum = hsum(total) + tail;
}

// Calls f(std::integral_constant<int, n>) for n in 1..4.
template <typename F> void with_heads(size_t n, F &&f) {
    switch (n) {
    case 1:
        return f(std::integral_constant<int, 1>{});
    case 2:
        return f(std::integral_constant<int, 2>{});
    case 3:
        return f(std::integral_constant<int, 3>{});
    default:
        return f(std::integral_constant<int, 4>{});
    }
}

// Query heads in runs of up to 4 (their accumulators fill about half the registers).
constexpr size_t kHeadsPerPass = 4;

template <typename T> void attention_task(const AttentionTask &a) {
    const T *k_cache = reinterpret_cast<const T *>(a.k_cache);
    const T *v_cache = reinterpret_cast<const T *>(a.v_cache);
    const size_t nk = a.n_keys;
    for (size_t g0 = 0; g0 < a.group; g0 += kHeadsPerPass)
        with_heads(a.group - g0, [&](auto ng) {
            head_scores<ng()>(a, k_cache, a.q + g0 * a.d, a.scores + g0 * nk, g0 == 0);
        });
    for (size_t g = 0; g < a.group; ++g) exp_shifted(a.scores + g * nk, nk, a.max[g], a.sum[g]);
    for (size_t g0 = 0; g0 < a.group; g0 += kHeadsPerPass)
        with_heads(a.group - g0, [&](auto ng) {
            head_values<ng()>(a, v_cache, a.scores + g0 * nk, a.acc + g0 * a.dv, g0 == 0);
        });
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
