#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::cpu {
// Shapes and element strides (token, head; the last dim has unit stride) of the operands.
struct AttentionArgs {
    size_t qlen, klen, n_heads, n_kv_heads, d, dv;
    ptrdiff_t out_token, out_head, q_token, q_head, k_token, k_head, v_token, v_head;
    float scale;
};

// Causal grouped-query attention (include/llaisys/ops.h: llaisysSelfAttention).
void self_attention(std::byte *out, const std::byte *q, const std::byte *k, const std::byte *v,
                    llaisysDataType_t dtype, const AttentionArgs &args);

// One (query, head) row: acc [dv] = softmax(q . k^T) v over the first n_keys keys, q [d]
// already scaled and in f32, k / v at the row's kv head (rows a.k_token / a.v_token apart).
// The AVX2 + FMA + F16C build, called only when cpu_features reports those.
namespace self_attention_avx2 {
void attend_row(float *acc, const float *q, const float *k, const float *v, size_t n_keys,
                const AttentionArgs &a, float *scratch);
void attend_row(float *acc, const float *q, const fp16_t *k, const fp16_t *v, size_t n_keys,
                const AttentionArgs &a, float *scratch);
void attend_row(float *acc, const float *q, const bf16_t *k, const bf16_t *v, size_t n_keys,
                const AttentionArgs &a, float *scratch);
// dst [n] = src [n] widened to f32.
void widen_row(const fp16_t *src, float *dst, size_t n);
void widen_row(const bf16_t *src, float *dst, size_t n);
} // namespace self_attention_avx2
} // namespace llaisys::ops::cpu
