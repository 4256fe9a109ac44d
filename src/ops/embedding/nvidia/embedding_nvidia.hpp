#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

// out row i = weight row index[i] (rows of row_bytes, index on the device); throws
// LLAISYS_ERR_INVALID_ARGUMENT before writing anything when an index lies outside
// [0, vocab).
void embedding(std::byte *out, const int64_t *index, const std::byte *weight, size_t n,
               size_t vocab, size_t row_bytes);

} // namespace llaisys::ops::nvidia
