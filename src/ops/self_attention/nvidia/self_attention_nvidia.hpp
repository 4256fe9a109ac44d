#pragma once

#include "ops/self_attention/cpu/self_attention_cpu.hpp"

namespace llaisys::ops::nvidia {

// Causal grouped-query attention (include/llaisys/ops.h: llaisysSelfAttention) on the
// device of the current context.
void self_attention(std::byte *out, const std::byte *q, const std::byte *k, const std::byte *v,
                    llaisysDataType_t dtype, const cpu::AttentionArgs &args, int device_id);

} // namespace llaisys::ops::nvidia
