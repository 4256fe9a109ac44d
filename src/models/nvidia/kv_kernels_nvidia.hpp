#pragma once

#include "models/cpu/kv_kernels_cpu.hpp"

namespace llaisys::models::nvidia {

// Device twins of models/cpu/kv_kernels_cpu.hpp; every pointer is device memory.
void move_rows(const cpu::RowMoves &m, bool scatter, const int64_t *idx, size_t n);
void take_sampled_ids(int64_t *tokens, const int32_t *prev_row, const int64_t *sampled, size_t n);
// Elements between consecutive tokens of q, k and v (each token's heads packed).
struct TokenPitches {
    ptrdiff_t q, k, v;
};
// models::rope_store_kv; backups (contiguous) may be null.
void rope_store_kv(std::byte *q, const std::byte *k, const std::byte *v, const int64_t *pos,
                   const int64_t *cells, std::byte *k_cache, std::byte *v_cache,
                   std::byte *backup_k, std::byte *backup_v, llaisysDataType_t dtype, size_t n,
                   size_t nh, size_t nkvh, size_t d, size_t dv, TokenPitches pitch, float theta);

// max_keys bounds n_keys (host knowledge: it sizes the split over the keys), max_run the
// runs of consecutive tokens of one list (below kFlashMinTokens / kFlashMaxRuns no tile
// goes to the prefill kernel, which is then not launched), settled that each token is its
// list's only query this step (so its other keys, written by earlier steps, are loaded
// before the kernel ahead of the attention finishes); scratch
// (scratch_floats >= attention_scratch_floats) holds the splits' partials, or is null.
void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const cpu::AttentionShape &s,
                     ptrdiff_t q_token, float scale, llaisysDataType_t dtype, size_t max_keys,
                     size_t max_run, bool settled, int device_id, float *scratch,
                     size_t scratch_floats);

// Scratch floats that cover any split of n tokens of nh heads of dv dims.
size_t attention_scratch_floats(size_t n, size_t nh, size_t dv);

} // namespace llaisys::models::nvidia
