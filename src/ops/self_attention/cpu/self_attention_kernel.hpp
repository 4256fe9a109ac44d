// The online-softmax loop of one (query, head) row, shared by the generic and the AVX2
// translation units. It has internal linkage on purpose: each unit keeps its own copy,
// compiled for its own instruction set, so the linker never hands the generic path code
// built for AVX2. Ops supplies the row primitives of one instruction set:
//   row(const T *src, float *buf, size_t n) -> const float *  (src itself when T is float)
//   dot(a, b, n), axpy(y, alpha, x, n), scale(y, alpha, n), exp(x)
#pragma once

#include "ops/self_attention/cpu/self_attention_cpu.hpp"

namespace llaisys::ops::cpu {
namespace {

// Keys scored per step: the running max and the accumulator are rescaled once per block
// instead of once per key.
constexpr size_t kKeyBlock = 64;

// Floats of scratch attend_row needs: a block of scores and one key or value row.
size_t attend_row_scratch(const AttentionArgs &a) { return kKeyBlock + (a.d > a.dv ? a.d : a.dv); }

template <typename Ops, typename T>
void attend_row(float *acc, const float *q, const T *k, const T *v, size_t n_keys,
                const AttentionArgs &a, float *scratch) {
    float *scores = scratch;
    float *row_buf = scratch + kKeyBlock;
    for (size_t i = 0; i < a.dv; ++i) acc[i] = 0.0f;
    float run_max = -__builtin_inff();
    float run_sum = 0.0f;
    for (size_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
        const size_t nb = n_keys - j0 < kKeyBlock ? n_keys - j0 : kKeyBlock;
        float block_max = run_max;
        for (size_t j = 0; j < nb; ++j) {
            const T *key = k + ptrdiff_t(j0 + j) * a.k_token;
            const float s = Ops::dot(q, Ops::row(key, row_buf, a.d), a.d);
            scores[j] = s;
            block_max = s > block_max ? s : block_max;
        }
        const float rescale = Ops::exp(run_max - block_max); // 0 on the first block
        run_sum *= rescale;
        Ops::scale(acc, rescale, a.dv);
        run_max = block_max;
        for (size_t j = 0; j < nb; ++j) {
            const float p = Ops::exp(scores[j] - run_max);
            run_sum += p;
            const T *val = v + ptrdiff_t(j0 + j) * a.v_token;
            Ops::axpy(acc, p, Ops::row(val, row_buf, a.dv), a.dv);
        }
    }
    Ops::scale(acc, 1.0f / run_sum, a.dv);
}

} // namespace
} // namespace llaisys::ops::cpu
