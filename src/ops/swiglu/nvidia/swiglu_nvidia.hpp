#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

// out = up * gate * sigmoid(gate) over n contiguous elements.
void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n);

} // namespace llaisys::ops::nvidia
