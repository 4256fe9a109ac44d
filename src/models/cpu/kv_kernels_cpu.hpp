#pragma once

#include "llaisys/llaisys.h"

#include <cstddef>
#include <cstdint>

namespace llaisys::models::cpu {

void scatter_rows(std::byte *dst, const int64_t *idx, const std::byte *src, size_t n,
                  size_t row_bytes);
void gather_rows(std::byte *dst, const std::byte *src, const int64_t *idx, size_t n,
                 size_t row_bytes);

struct AttentionShape {
    size_t n, nh, nkvh, d, dv;
};

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const AttentionShape &s, float scale,
                     llaisysDataType_t dtype);

} // namespace llaisys::models::cpu
