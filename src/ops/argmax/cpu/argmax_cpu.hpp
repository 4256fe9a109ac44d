#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::cpu {
// Per row of vals [rows, n] (rows row_stride elements apart): index and value of the
// first maximum.
void argmax(int64_t *max_idx, std::byte *max_val, const std::byte *vals, llaisysDataType_t dtype,
            size_t rows, size_t n, ptrdiff_t row_stride);

// Index of the first maximum of one row, compared in f32 (exact for every float dtype).
template <typename T> size_t argmax_row(const T *row, size_t n) {
    size_t best = 0;
    float best_val = to_f32(row[0]);
    for (size_t i = 1; i < n; ++i) {
        float v = to_f32(row[i]);
        if (v > best_val) {
            best_val = v;
            best = i;
        }
    }
    return best;
}
} // namespace llaisys::ops::cpu
