// The online-softmax loop of one (query, head) row, shared by the generic and the AVX2
// translation units. It has internal linkage on purpose: each unit keeps its own copy,
// compiled for its own instruction set, so the linker never hands the generic path code
// built for AVX2. Ops supplies the block primitives of one instruction set:
//   rows(src, stride, nb, n, buf) -> Rows   nb rows of n elements as f32 (src itself when
//                                           T is float, else widened into buf)
//   scores(q, keys, nb, d, out)             out[j] = q . key j
//   exp_sum(x, nb, max) -> sum              x[j] = exp(x[j] - max), returns their sum
//   scale(y, alpha, n)                      y *= alpha
//   accumulate(acc, p, values, nb, dv)      acc += sum_j p[j] * value j
#pragma once

#include "ops/self_attention/cpu/self_attention_cpu.hpp"

namespace llaisys::ops::cpu {
namespace {

// Keys per step: the running max and the accumulator are rescaled once per block.
constexpr size_t kKeyBlock = 64;

// nb rows of f32, stride floats apart.
struct Rows {
    const float *data;
    ptrdiff_t stride;
};

// Floats of scratch attend_row needs: a block of scores and a block of widened rows.
size_t attend_row_scratch(const AttentionArgs &a) {
    return kKeyBlock + kKeyBlock * (a.d > a.dv ? a.d : a.dv);
}

template <typename Ops, typename T>
void attend_row(float *acc, const float *q, const T *k, const T *v, size_t n_keys,
                const AttentionArgs &a, float *scratch) {
    float *scores = scratch;
    float *rows_buf = scratch + kKeyBlock;
    for (size_t i = 0; i < a.dv; ++i) acc[i] = 0.0f;
    float run_max = -__builtin_inff();
    float run_sum = 0.0f;
    for (size_t j0 = 0; j0 < n_keys; j0 += kKeyBlock) {
        const size_t nb = n_keys - j0 < kKeyBlock ? n_keys - j0 : kKeyBlock;
        const Rows keys = Ops::rows(k + ptrdiff_t(j0) * a.k_token, a.k_token, nb, a.d, rows_buf);
        Ops::scores(q, keys, nb, a.d, scores);
        float block_max = run_max;
        for (size_t j = 0; j < nb; ++j) block_max = scores[j] > block_max ? scores[j] : block_max;
        const float rescale = __builtin_expf(run_max - block_max); // 0 on the first block
        run_sum = run_sum * rescale + Ops::exp_sum(scores, nb, block_max);
        Ops::scale(acc, rescale, a.dv);
        run_max = block_max;
        const Rows values = Ops::rows(v + ptrdiff_t(j0) * a.v_token, a.v_token, nb, a.dv, rows_buf);
        Ops::accumulate(acc, scores, values, nb, a.dv);
    }
    Ops::scale(acc, 1.0f / run_sum, a.dv);
}

} // namespace
} // namespace llaisys::ops::cpu
