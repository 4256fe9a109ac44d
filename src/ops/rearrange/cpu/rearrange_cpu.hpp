#pragma once

#include <cstddef>
#include <vector>

namespace llaisys::ops::cpu {
// Copies every element of shape from src (strides in elements) to dst.
void rearrange(std::byte *dst, const std::byte *src, const std::vector<size_t> &shape,
               const std::vector<ptrdiff_t> &dst_strides, const std::vector<ptrdiff_t> &src_strides,
               size_t elem_size);
} // namespace llaisys::ops::cpu
