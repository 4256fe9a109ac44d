// KV cache: per-layer K and V arrays of n_cells cells on the model's device, plus the
// host bookkeeping of one layout (include/llaisys/model.h documents both).
#pragma once

#include "llaisys/model.h"
#include "tensor/tensor.hpp"

#include <cstdint>
#include <vector>

namespace llaisys::models {

class Model;

class KvCache {
public:
    KvCache(const Model &model, const LlaisysKvCacheParams &params);

    const Model &model() const { return model_; }
    llaisysKvLayout_t layout() const { return layout_; }
    size_t n_cells() const { return n_cells_; }
    size_t block_size() const { return block_size_; }
    size_t n_blocks() const { return n_cells_ / block_size_; }
    int32_t n_seq_max() const { return n_seq_max_; }
    const tensor_t &k(size_t layer) const { return k_[layer]; }
    const tensor_t &v(size_t layer) const { return v_[layer]; }

    LlaisysKvCacheStats stats() const;
    void clear();
    void release_blocks(const int32_t *block_ids, size_t n);

    // SLOT sequence operations.
    void seq_remove(int32_t seq, int64_t p0, int64_t p1);
    void seq_copy(int32_t src, int32_t dst, int64_t p0, int64_t p1);
    void seq_keep(int32_t seq);
    int64_t seq_pos_max(int32_t seq) const;

    // Decode support, SLOT: the largest position of every sequence (-1: none) ...
    std::vector<int64_t> pos_max_all() const;
    size_t free_cells() const { return n_cells_ - used_; }
    // ... takes free cells for tokens at positions pos of sequences seq (enough must be free),
    std::vector<int64_t> allocate(const std::vector<int64_t> &pos, const std::vector<int32_t> &seq);
    // ... gives back cells taken by allocate (rollback) ...
    void unallocate(const std::vector<int64_t> &cells);
    // ... and lists each given sequence's cells ordered by position.
    struct Cell {
        int64_t pos;
        int32_t cell;
    };
    std::vector<std::vector<Cell>> seq_cells(const std::vector<int32_t> &seqs) const;

    // Decode support, BLOCK: marks cells written.
    void mark_written(const std::vector<int64_t> &cells);
    // Both layouts: records a new high-water mark of used cells.
    void update_peak() { peak_ = std::max(peak_, used_); }

private:
    void zero_fill();
    void require_slot(const char *op) const;
    void check_seq(const char *op, int32_t seq, bool allow_all) const;
    bool has_seq(size_t cell, int32_t seq) const;
    void set_seq(size_t cell, int32_t seq, bool on);
    bool cell_empty(size_t cell) const;
    void free_cell(size_t cell);

    const Model &model_;
    llaisysKvLayout_t layout_;
    size_t n_cells_, block_size_;
    int32_t n_seq_max_;
    std::vector<tensor_t> k_, v_;
    size_t used_ = 0, peak_ = 0;

    // SLOT: position (-1: free) and sequence-id bitset of every cell, free cells as a stack.
    std::vector<int64_t> cell_pos_;
    size_t seq_words_ = 0;
    std::vector<uint64_t> cell_seqs_; // [n_cells * seq_words_]
    std::vector<int32_t> free_list_;
    // BLOCK: whether each cell is written and not released.
    std::vector<uint8_t> cell_used_;
};

} // namespace llaisys::models
