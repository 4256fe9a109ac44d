// Host-side weight conversion on upload: float dtypes to one another and GGUF blocks
// (Q8_0, Q4_0, Q4_1) dequantized to a float dtype.
#pragma once

#include "llaisys/llaisys.h"

#include <cstddef>

namespace llaisys::models {

// Writes n elements of src (src_dtype: F32/F16/BF16 or quantized, n a multiple of 32 then)
// to dst as dst_dtype (F32/F16/BF16).
void convert_weight(void *dst, llaisysDataType_t dst_dtype, const void *src,
                    llaisysDataType_t src_dtype, size_t n);

} // namespace llaisys::models
