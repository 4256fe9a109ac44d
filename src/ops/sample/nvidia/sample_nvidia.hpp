#pragma once

#include "core/dtype.hpp"
#include "llaisys/ops.h"

namespace llaisys::ops::nvidia {

// One token id per row of logits [rows, vocab] (rows row_stride elements apart) under
// params[row]; every pointer is device memory. The filters keep every
// token tied with the last one kept, and the draw walks the kept tokens in id order, so
// a seed gives the CPU's id only when no ties or order matter.
void sample(int64_t *out_ids, const std::byte *logits, llaisysDataType_t dtype, size_t rows,
            size_t vocab, ptrdiff_t row_stride, const LlaisysSamplingParams *params);

} // namespace llaisys::ops::nvidia
