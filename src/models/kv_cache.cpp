#include "models/kv_cache.hpp"

#include "models/model.hpp"

#include "device/runtime.hpp"

#include <algorithm>
#include <limits>

namespace llaisys::models {

KvCache::KvCache(const Model &model, const LlaisysKvCacheParams &params)
    : model_(model), layout_(params.layout), n_cells_(params.n_cells),
      block_size_(params.layout == LLAISYS_KV_LAYOUT_BLOCK ? params.block_size : 1),
      n_seq_max_(params.n_seq_max) {
    CHECK_ARG(layout_ == LLAISYS_KV_LAYOUT_SLOT || layout_ == LLAISYS_KV_LAYOUT_BLOCK,
              "kv cache: unknown layout ", int(layout_));
    CHECK_ARG(n_cells_ >= 1, "kv cache: n_cells must be >= 1");
    CHECK_ARG(block_size_ >= 1, "kv cache: block_size must be >= 1");
    CHECK_ARG(n_cells_ % block_size_ == 0, "kv cache: n_cells ", n_cells_,
              " is not a multiple of block_size ", block_size_);
    if (layout_ == LLAISYS_KV_LAYOUT_SLOT) {
        CHECK_ARG(n_seq_max_ >= 1, "kv cache: n_seq_max must be >= 1, got ", n_seq_max_);
        seq_words_ = (size_t(n_seq_max_) + 63) / 64;
        cell_pos_.assign(n_cells_, -1);
        cell_seqs_.assign(n_cells_ * seq_words_, 0);
    } else {
        cell_used_.assign(n_cells_, 0);
    }
    const LlaisysModelMeta &m = model.meta();
    for (size_t l = 0; l < m.n_layer; ++l) {
        k_.push_back(Tensor::create({n_cells_, m.n_kv_head, m.head_dim}, m.dtype, model.device(),
                                    model.device_id()));
        v_.push_back(Tensor::create({n_cells_, m.n_kv_head, m.head_dim}, m.dtype, model.device(),
                                    model.device_id()));
    }
    zero_fill();
    clear();
}

// Writes zeros over K and V once, as llama.cpp clears its KV buffers: the cache's memory is
// committed at creation (the process does not grow by the whole cache as blocks are first
// used, hours into serving), and a cell never written reads as 0, not as leftover bytes.
void KvCache::zero_fill() {
    const LlaisysRuntimeAPI *api = device::runtime_api(model_.device());
    api->set_device(model_.device_id());
    const auto kind =
        model_.device() == LLAISYS_DEVICE_CPU ? LLAISYS_MEMCPY_H2H : LLAISYS_MEMCPY_H2D;
    const std::vector<std::byte> zeros(std::min<size_t>(k_.front()->nbytes(), size_t(4) << 20));
    for (const auto *tensors : {&k_, &v_})
        for (const tensor_t &t : *tensors)
            for (size_t off = 0; off < t->nbytes(); off += zeros.size())
                api->memcpy_sync(t->data() + off, zeros.data(),
                                 std::min(zeros.size(), t->nbytes() - off), kind);
}

LlaisysKvCacheStats KvCache::stats() const {
    size_t bytes = 0;
    for (size_t l = 0; l < k_.size(); ++l) bytes += k_[l]->nbytes() + v_[l]->nbytes();
    return LlaisysKvCacheStats{n_cells_, used_, n_cells_ - used_, peak_, bytes};
}

void KvCache::clear() {
    used_ = 0;
    if (layout_ == LLAISYS_KV_LAYOUT_BLOCK) {
        std::fill(cell_used_.begin(), cell_used_.end(), 0);
        return;
    }
    std::fill(cell_pos_.begin(), cell_pos_.end(), -1);
    std::fill(cell_seqs_.begin(), cell_seqs_.end(), 0);
    free_list_.resize(n_cells_);
    for (size_t i = 0; i < n_cells_; ++i) free_list_[i] = int32_t(n_cells_ - 1 - i);
}

void KvCache::release_blocks(const int32_t *block_ids, size_t n) {
    LLAISYS_CHECK(layout_ == LLAISYS_KV_LAYOUT_BLOCK, LLAISYS_ERR_UNSUPPORTED,
                  "release_blocks: the cache is not BLOCK layout");
    CHECK_ARG(block_ids != nullptr || n == 0, "release_blocks: null block_ids");
    for (size_t i = 0; i < n; ++i)
        CHECK_ARG(block_ids[i] >= 0 && size_t(block_ids[i]) < n_blocks(),
                  "release_blocks: block id ", block_ids[i], " out of range [0, ", n_blocks(), ")");
    for (size_t i = 0; i < n; ++i)
        for (size_t c = size_t(block_ids[i]) * block_size_;
             c < size_t(block_ids[i] + 1) * block_size_; ++c) {
            used_ -= cell_used_[c];
            cell_used_[c] = 0;
        }
}

void KvCache::mark_written(const std::vector<int64_t> &cells) {
    for (int64_t c : cells) {
        used_ += 1 - cell_used_[c];
        cell_used_[c] = 1;
    }
}

// ------------------------------------------------------------------------ SLOT --

void KvCache::require_slot(const char *op) const {
    LLAISYS_CHECK(layout_ == LLAISYS_KV_LAYOUT_SLOT, LLAISYS_ERR_UNSUPPORTED, op,
                  ": sequence operations need a SLOT layout cache");
}

void KvCache::check_seq(const char *op, int32_t seq, bool allow_all) const {
    CHECK_ARG((allow_all && seq < 0) || (seq >= 0 && seq < n_seq_max_), op, ": sequence id ", seq,
              " out of range [0, ", n_seq_max_, ")");
}

bool KvCache::has_seq(size_t cell, int32_t seq) const {
    return (cell_seqs_[cell * seq_words_ + size_t(seq) / 64] >> (seq % 64)) & 1u;
}

void KvCache::set_seq(size_t cell, int32_t seq, bool on) {
    uint64_t &w = cell_seqs_[cell * seq_words_ + size_t(seq) / 64];
    const uint64_t bit = uint64_t(1) << (seq % 64);
    w = on ? w | bit : w & ~bit;
}

bool KvCache::cell_empty(size_t cell) const {
    const uint64_t *w = &cell_seqs_[cell * seq_words_];
    return std::all_of(w, w + seq_words_, [](uint64_t x) { return x == 0; });
}

void KvCache::free_cell(size_t cell) {
    std::fill_n(&cell_seqs_[cell * seq_words_], seq_words_, 0);
    cell_pos_[cell] = -1;
    free_list_.push_back(int32_t(cell));
    --used_;
}

namespace {
struct Range {
    int64_t p0, p1;
    Range(int64_t a, int64_t b)
        : p0(a < 0 ? 0 : a), p1(b < 0 ? std::numeric_limits<int64_t>::max() : b) {}
    bool has(int64_t p) const { return p >= p0 && p < p1; }
};
} // namespace

void KvCache::seq_remove(int32_t seq, int64_t p0, int64_t p1) {
    require_slot("seq_remove");
    check_seq("seq_remove", seq, true);
    const Range r(p0, p1);
    for (size_t c = 0; c < n_cells_; ++c) {
        if (cell_pos_[c] < 0 || !r.has(cell_pos_[c])) continue;
        if (seq < 0) {
            free_cell(c);
        } else if (has_seq(c, seq)) {
            set_seq(c, seq, false);
            if (cell_empty(c)) free_cell(c);
        }
    }
}

void KvCache::seq_copy(int32_t src, int32_t dst, int64_t p0, int64_t p1) {
    require_slot("seq_copy");
    check_seq("seq_copy", src, false);
    check_seq("seq_copy", dst, false);
    const Range r(p0, p1);
    for (size_t c = 0; c < n_cells_; ++c)
        if (cell_pos_[c] >= 0 && r.has(cell_pos_[c]) && has_seq(c, src)) set_seq(c, dst, true);
}

void KvCache::seq_keep(int32_t seq) {
    require_slot("seq_keep");
    check_seq("seq_keep", seq, false);
    for (size_t c = 0; c < n_cells_; ++c) {
        if (cell_pos_[c] < 0) continue;
        if (has_seq(c, seq)) {
            std::fill_n(&cell_seqs_[c * seq_words_], seq_words_, 0);
            set_seq(c, seq, true);
        } else {
            free_cell(c);
        }
    }
}

int64_t KvCache::seq_pos_max(int32_t seq) const {
    require_slot("seq_pos_max");
    check_seq("seq_pos_max", seq, false);
    int64_t best = -1;
    for (size_t c = 0; c < n_cells_; ++c)
        if (cell_pos_[c] > best && has_seq(c, seq)) best = cell_pos_[c];
    return best;
}

std::vector<int64_t> KvCache::pos_max_all() const {
    std::vector<int64_t> best(size_t(n_seq_max_), -1);
    for (size_t c = 0; c < n_cells_; ++c) {
        if (cell_pos_[c] < 0) continue;
        for (size_t w = 0; w < seq_words_; ++w)
            for (uint64_t bits = cell_seqs_[c * seq_words_ + w]; bits; bits &= bits - 1) {
                int64_t &b = best[w * 64 + size_t(__builtin_ctzll(bits))];
                b = std::max(b, cell_pos_[c]);
            }
    }
    return best;
}

std::vector<int64_t> KvCache::allocate(const std::vector<int64_t> &pos,
                                       const std::vector<int32_t> &seq) {
    LLAISYS_CHECK(pos.size() <= free_list_.size(), LLAISYS_ERR_NO_KV_SPACE,
                  "kv cache full: ", pos.size(), " tokens need cells, ", free_list_.size(), " of ",
                  n_cells_, " are free");
    std::vector<int64_t> cells(pos.size());
    for (size_t i = 0; i < pos.size(); ++i) {
        const int32_t c = free_list_.back();
        free_list_.pop_back();
        cell_pos_[c] = pos[i];
        set_seq(size_t(c), seq[i], true);
        cells[i] = c;
        ++used_;
    }
    return cells;
}

void KvCache::unallocate(const std::vector<int64_t> &cells) {
    for (size_t i = cells.size(); i-- > 0;) free_cell(size_t(cells[i]));
}

std::vector<std::vector<KvCache::Cell>> KvCache::seq_cells(const std::vector<int32_t> &seqs) const {
    std::vector<std::vector<Cell>> out(seqs.size());
    std::vector<int32_t> list_of(size_t(n_seq_max_), -1);
    for (size_t s = 0; s < seqs.size(); ++s) list_of[size_t(seqs[s])] = int32_t(s);
    for (size_t c = 0; c < n_cells_; ++c) {
        if (cell_pos_[c] < 0) continue;
        for (size_t w = 0; w < seq_words_; ++w)
            for (uint64_t bits = cell_seqs_[c * seq_words_ + w]; bits; bits &= bits - 1) {
                const int32_t s = list_of[w * 64 + size_t(__builtin_ctzll(bits))];
                if (s >= 0) out[size_t(s)].push_back(Cell{cell_pos_[c], int32_t(c)});
            }
    }
    for (auto &cells : out)
        std::sort(cells.begin(), cells.end(), [](const Cell &a, const Cell &b) {
            return a.pos < b.pos || (a.pos == b.pos && a.cell < b.cell);
        });
    return out;
}

} // namespace llaisys::models
