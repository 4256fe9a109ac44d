#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

// Rows of d elements, out/in rows *_stride elements apart.
void rms_norm(std::byte *out, ptrdiff_t out_stride, const std::byte *in, ptrdiff_t in_stride,
              const std::byte *weight, llaisysDataType_t dtype, size_t rows, size_t d, float eps);

} // namespace llaisys::ops::nvidia
