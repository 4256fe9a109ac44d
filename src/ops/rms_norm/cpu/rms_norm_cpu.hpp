#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::cpu {
// out row = in row / sqrt(mean(in row^2) + eps) * weight, for rows of d elements at the
// given pitches (in elements). With a residual, in row += residual row first (rounded to
// the dtype, as add then rms_norm would) and the sum stays in in.
void rms_norm(std::byte *out, ptrdiff_t out_stride, std::byte *in, ptrdiff_t in_stride,
              const std::byte *residual, ptrdiff_t residual_stride, const std::byte *weight,
              llaisysDataType_t dtype, size_t rows, size_t d, float eps);
} // namespace llaisys::ops::cpu
