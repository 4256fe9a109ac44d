#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::nvidia {

void add(std::byte *c, const std::byte *a, const std::byte *b, llaisysDataType_t dtype, size_t n);

} // namespace llaisys::ops::nvidia
