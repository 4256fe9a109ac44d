#pragma once

#include "core/dtype.hpp"
#include "llaisys/ops.h"

namespace llaisys::ops::cpu {
// One token id per row of logits [rows, vocab] (rows row_stride elements apart) under
// params[row] (include/llaisys/ops.h: llaisysSample).
void sample(int64_t *out_ids, const std::byte *logits, llaisysDataType_t dtype, size_t rows,
            size_t vocab, ptrdiff_t row_stride, const LlaisysSamplingParams *params);
} // namespace llaisys::ops::cpu
