#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::cpu {
// Strides of a [n, heads, d] operand whose last dim has unit stride, in elements.
struct TokenHeadStrides {
    ptrdiff_t token;
    ptrdiff_t head;
};

// Half-rotation rotary embedding of in [n, heads, d] into out (which may alias in).
void rope(std::byte *out, TokenHeadStrides out_strides, const std::byte *in,
          TokenHeadStrides in_strides, const int64_t *pos_ids, llaisysDataType_t dtype, size_t n,
          size_t heads, size_t d, float theta);
} // namespace llaisys::ops::cpu
