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
} // namespace llaisys::ops::cpu
