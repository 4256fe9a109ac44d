// Model-specific kernels over KV cache cells: row scatter/gather by cell index and
// attention that reads keys and values straight from the cache (no gather).
#pragma once

#include "tensor/tensor.hpp"

#include <initializer_list>

namespace llaisys::models {

// cells [cells, ...] and rows [n, ...] of the same trailing shape and dtype.
struct RowMove {
    tensor_t cells, rows;
};
// cells[idx[i]] = rows[i] for each row i of each move; idx [n] I64 in [0, cells). A layer's
// K and V move in one call (one launch on the GPU).
void scatter_rows(tensor_t idx, std::initializer_list<RowMove> moves);
// rows[i] = cells[idx[i]] for each row i of each move.
void gather_rows(tensor_t idx, std::initializer_list<RowMove> moves);

// A layer's new keys and values into the cache, RoPE included: q is rotated in place, and for
// each token i the cell cells[i] receives the rotated k row and the v row, after what it held
// was copied to row i of backup_k/backup_v (when given: a BLOCK cache's rollback). q [n, nh,
// d], k [n, nkvh, d], v [n, nkvh, dv], caches [cells, nkvh, d|dv], pos and cells I64 [n];
// cells are distinct, except that a GPU graph step pads its batch with copies of token 0,
// which the GPU kernel skips (one launch on the GPU; k may be rotated in place elsewhere).
// On the GPU q, k and v may sit at any token pitch with each token's heads packed (head
// ranges of a fused q/k/v product); the CPU takes them contiguous.
void rope_store_kv(tensor_t q, tensor_t k, tensor_t v, tensor_t pos, float theta, tensor_t k_cache,
                   tensor_t v_cache, tensor_t cells, tensor_t backup_k, tensor_t backup_v);

// tokens[i] = sampled[prev_row[i]] where prev_row[i] >= 0 (LlaisysBatch.prev_row: a step's
// tokens taken from the previous step's samples on the device); tokens and sampled I64,
// prev_row I32 [n], every prev_row below sampled's length.
void take_sampled_ids(tensor_t tokens, tensor_t prev_row, tensor_t sampled);

// Where the keys of each query token live. Key j (0 <= j < n_keys[i]) of token i is cell
//   table[row[i] + j / block_size] * block_size + j % block_size
// A BLOCK cache passes its block tables (row = sequence row * width); a SLOT cache passes
// each sequence's cells ordered by position with block_size 1 (row = offset of its list).
struct KeyMap {
    tensor_t table;    // I32
    tensor_t row;      // I64 [n]
    tensor_t n_keys;   // I32 [n]
    size_t block_size; // >= 1
    size_t max_keys;   // >= every n_keys (sizes the GPU's split over the keys)
    size_t max_run;    // >= the longest run of consecutive tokens of one key list whose
                       // outputs are kept (a decode batch's 1 spares the GPU its prefill
                       // kernel)
    bool settled;      // each token is its list's only query this step: the keys before its
                       // own were written by earlier steps (the GPU loads them before the
                       // kernels before its attention finish)
    tensor_t scratch;  // F32 [attention_scratch_floats(...)] for the GPU's split partials,
                       // or null: taken from the allocator per call
};

// Scratch the GPU's paged attention needs for n tokens of nh heads of dv dims, whatever
// the context lengths (0 on the CPU).
size_t attention_scratch_floats(llaisysDeviceType_t device, size_t n, size_t nh, size_t dv);

// out [n, nh, dv] = softmax(q . k^T * scale) v per token over its keys; q [n, nh, d],
// k_cache [cells, nkvh, d], v_cache [cells, nkvh, dv], nh a multiple of nkvh. q is
// contiguous, or on the GPU at any token pitch with its heads packed.
void paged_attention(tensor_t out, tensor_t q, tensor_t k_cache, tensor_t v_cache,
                     const KeyMap &keys, float scale);

} // namespace llaisys::models
