#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

// Per row of vals [rows, n] (rows row_stride elements apart): index and value of the
// first maximum (NaN never wins).
void argmax(int64_t *max_idx, std::byte *max_val, const std::byte *vals, llaisysDataType_t dtype,
            size_t rows, size_t n, ptrdiff_t row_stride);

} // namespace llaisys::ops::nvidia
