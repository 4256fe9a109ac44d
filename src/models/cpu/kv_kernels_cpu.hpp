#pragma once

#include "llaisys/llaisys.h"

#include <cstddef>
#include <cstdint>

namespace llaisys::models::cpu {

// Moves of rows between cache cells and n packed rows over one index idx [n]: cells[j] has
// rows of row_bytes[j] (a layer's K and V are two moves of one call).
constexpr size_t kMaxRowMoves = 2;
struct RowMoves {
    std::byte *cells[kMaxRowMoves];
    std::byte *rows[kMaxRowMoves];
    size_t row_bytes[kMaxRowMoves];
    size_t count;
};

// cells[j][idx[i]] = rows[j][i] (scatter) or rows[j][i] = cells[j][idx[i]].
void move_rows(const RowMoves &m, bool scatter, const int64_t *idx, size_t n);

// tokens[i] = sampled[prev_row[i]] where prev_row[i] >= 0.
void take_sampled_ids(int64_t *tokens, const int32_t *prev_row, const int64_t *sampled, size_t n);

struct AttentionShape {
    size_t n, nh, nkvh, d, dv;
};

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const AttentionShape &s, float scale,
                     llaisysDataType_t dtype);

} // namespace llaisys::models::cpu
