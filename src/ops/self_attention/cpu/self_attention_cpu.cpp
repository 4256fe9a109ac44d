#include "ops/self_attention/cpu/self_attention_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace llaisys::ops::cpu {

namespace {

// Keys scored per step of the online softmax: the running max and the accumulator are
// rescaled once per block instead of once per key.
constexpr size_t kKeyBlock = 64;

template <typename T>
void attend_row(T *out, const T *q, const T *k, const T *v, size_t n_keys, const AttentionArgs &a,
                float *q_f32, float *acc, float *scores) {
    for (size_t i = 0; i < a.d; ++i) q_f32[i] = to_f32(q[i]) * a.scale;
    std::fill(acc, acc + a.dv, 0.0f);
    float run_max = -std::numeric_limits<float>::infinity();
    float run_sum = 0.0f;
    for (size_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
        const size_t nb = std::min(kKeyBlock, n_keys - j0);
        float block_max = -std::numeric_limits<float>::infinity();
        for (size_t j = 0; j < nb; ++j) {
            const T *key = k + ptrdiff_t(j0 + j) * a.k_token;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (size_t i = 0; i < a.d; ++i) s += q_f32[i] * to_f32(key[i]);
            scores[j] = s;
            block_max = std::max(block_max, s);
        }
        const float new_max = std::max(run_max, block_max);
        const float rescale = std::exp(run_max - new_max); // 0 on the first block
        run_sum *= rescale;
        for (size_t i = 0; i < a.dv; ++i) acc[i] *= rescale;
        run_max = new_max;
        for (size_t j = 0; j < nb; ++j) {
            const float p = std::exp(scores[j] - run_max);
            run_sum += p;
            const T *val = v + ptrdiff_t(j0 + j) * a.v_token;
            for (size_t i = 0; i < a.dv; ++i) acc[i] += p * to_f32(val[i]);
        }
    }
    const float inv_sum = 1.0f / run_sum;
    for (size_t i = 0; i < a.dv; ++i) out[i] = from_f32<T>(acc[i] * inv_sum);
}

} // namespace

void self_attention(std::byte *out, const std::byte *q, const std::byte *k, const std::byte *v,
                    llaisysDataType_t dtype, const AttentionArgs &a) {
    dispatch_float(dtype, "self_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pq = reinterpret_cast<const T *>(q);
        auto *pk = reinterpret_cast<const T *>(k);
        auto *pv = reinterpret_cast<const T *>(v);
        const size_t group = a.n_heads / a.n_kv_heads;
        const size_t past = a.klen - a.qlen;
        const size_t tasks = a.qlen * a.n_heads;
#pragma omp parallel if (tasks > 1)
        {
            std::vector<float> q_f32(a.d), acc(a.dv), scores(kKeyBlock);
            // Later queries see more keys: dynamic scheduling balances the causal triangle.
#pragma omp for schedule(dynamic, 1)
            for (size_t task = 0; task < tasks; ++task) {
                const size_t qi = task / a.n_heads, h = task % a.n_heads, kvh = h / group;
                attend_row(po + ptrdiff_t(qi) * a.out_token + ptrdiff_t(h) * a.out_head,
                           pq + ptrdiff_t(qi) * a.q_token + ptrdiff_t(h) * a.q_head,
                           pk + ptrdiff_t(kvh) * a.k_head, pv + ptrdiff_t(kvh) * a.v_head,
                           past + qi + 1, a, q_f32.data(), acc.data(), scores.data());
            }
        }
    });
}

} // namespace llaisys::ops::cpu
