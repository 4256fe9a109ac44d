#pragma once

#include "ops/rope/cpu/rope_cpu.hpp"

namespace llaisys::ops::nvidia {

// Half-rotation rotary embedding of in [n, heads, d] into out (which may alias in).
void rope(std::byte *out, cpu::TokenHeadStrides out_strides, const std::byte *in,
          cpu::TokenHeadStrides in_strides, const int64_t *pos_ids, llaisysDataType_t dtype,
          size_t n, size_t heads, size_t d, float theta);

} // namespace llaisys::ops::nvidia
