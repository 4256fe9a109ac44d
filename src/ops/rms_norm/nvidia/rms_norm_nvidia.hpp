#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

// As cpu::rms_norm: rows of d elements, pitches in elements, residual may be null.
// constant_weight: no queued work writes weight, so it is loaded before the wait for the
// kernel before. next_early: the kernel after it may start before that wait (ops.hpp).
void rms_norm(std::byte *out, ptrdiff_t out_stride, std::byte *in, ptrdiff_t in_stride,
              const std::byte *residual, ptrdiff_t residual_stride, const std::byte *weight,
              llaisysDataType_t dtype, size_t rows, size_t d, float eps, bool constant_weight,
              bool next_early);

} // namespace llaisys::ops::nvidia
