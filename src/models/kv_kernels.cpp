#include "models/kv_kernels.hpp"

#include "models/cpu/kv_kernels_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "models/nvidia/kv_kernels_nvidia.hpp"
#endif
#include "ops/checks.hpp"
#include "ops/ops.hpp"

namespace llaisys::models {

namespace {

// Bytes of one row (dims after the first) of a contiguous tensor.
size_t row_bytes(const tensor_t &t) { return t->numel() ? t->nbytes() / t->dim(0) : 0; }

// rows at any row pitch when row_pitch (a GPU kernel's operands), else contiguous.
void check_rows(const char *op, const tensor_t &cells, const tensor_t &idx, const tensor_t &rows,
                bool row_pitch = false) {
    ops::check_not_null(op, {&cells, &rows});
    ops::check_same_device(op, {cells, idx, rows});
    ops::check_same_dtype(op, {cells, rows});
    ops::check_contiguous(op, {cells});
    if (row_pitch)
        ops::check_rows_contiguous(op, {rows});
    else
        ops::check_contiguous(op, {rows});
    CHECK_SHAPE(
        cells->ndim() >= 1 && rows->ndim() == cells->ndim() && idx->dim(0) == rows->dim(0) &&
            std::equal(cells->shape().begin() + 1, cells->shape().end(), rows->shape().begin() + 1),
        op, ": shapes do not fit: ", shape_str(cells->shape()), ", ", shape_str(idx->shape()), ", ",
        shape_str(rows->shape()));
}

// A contiguous 1-D array of dtype (an index, ids).
void check_array(const char *op, const tensor_t &t, llaisysDataType_t dtype, const char *name) {
    ops::check_not_null(op, {&t});
    ops::check_dtype(op, t, dtype, name);
    ops::check_contiguous(op, {t});
    CHECK_SHAPE(t->ndim() == 1, op, ": ", name, " must be 1-D, got ", shape_str(t->shape()));
}

void move_rows(const char *op, bool scatter, const tensor_t &idx,
               std::initializer_list<RowMove> moves) {
    check_array(op, idx, LLAISYS_DTYPE_I64, "idx");
    CHECK_ARG(moves.size() >= 1 && moves.size() <= cpu::kMaxRowMoves, op, ": 1 to ",
              cpu::kMaxRowMoves, " moves, got ", moves.size());
    cpu::RowMoves m{};
    for (const RowMove &mv : moves) {
        check_rows(op, mv.cells, idx, mv.rows);
        m.cells[m.count] = mv.cells->data();
        m.rows[m.count] = mv.rows->data();
        m.row_bytes[m.count++] = row_bytes(mv.rows);
    }
    const auto *ids = reinterpret_cast<const int64_t *>(idx->data());
    switch (idx->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::move_rows(m, scatter, ids, idx->dim(0));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::move_rows(m, scatter, ids, idx->dim(0));
#endif
    default:
        ops::unsupported_device(op, idx);
    }
}

} // namespace

void scatter_rows(tensor_t idx, std::initializer_list<RowMove> moves) {
    move_rows("scatter_rows", true, idx, moves);
}

void gather_rows(tensor_t idx, std::initializer_list<RowMove> moves) {
    move_rows("gather_rows", false, idx, moves);
}

void take_sampled_ids(tensor_t tokens, tensor_t prev_row, tensor_t sampled) {
    const char *op = "take_sampled_ids";
    check_array(op, tokens, LLAISYS_DTYPE_I64, "tokens");
    check_array(op, prev_row, LLAISYS_DTYPE_I32, "prev_row");
    check_array(op, sampled, LLAISYS_DTYPE_I64, "sampled");
    ops::check_same_device(op, {tokens, prev_row, sampled});
    CHECK_SHAPE(tokens->dim(0) == prev_row->dim(0), op,
                ": tokens and prev_row differ in length: ", tokens->dim(0), " and ",
                prev_row->dim(0));
    auto *out = reinterpret_cast<int64_t *>(tokens->data());
    const auto *rows = reinterpret_cast<const int32_t *>(prev_row->data());
    const auto *ids = reinterpret_cast<const int64_t *>(sampled->data());
    switch (tokens->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::take_sampled_ids(out, rows, ids, tokens->dim(0));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::take_sampled_ids(out, rows, ids, tokens->dim(0));
#endif
    default:
        ops::unsupported_device(op, tokens);
    }
}

void rope_store_kv(tensor_t q, tensor_t k, tensor_t v, tensor_t pos, float theta, tensor_t k_cache,
                   tensor_t v_cache, tensor_t cells, tensor_t backup_k, tensor_t backup_v) {
    const char *op = "rope_store_kv";
    ops::check_not_null(op, {&q, &k, &v, &pos, &k_cache, &v_cache, &cells});
    CHECK_ARG(!backup_k == !backup_v, op, ": backup_k and backup_v go together");
    if (q->device_type() != LLAISYS_DEVICE_NVIDIA) {
        ops::rope(q, q, pos, theta);
        ops::rope(k, k, pos, theta);
        if (backup_k) gather_rows(cells, {{k_cache, backup_k}, {v_cache, backup_v}});
        return scatter_rows(cells, {{k_cache, k}, {v_cache, v}});
    }
#ifdef LLAISYS_ENABLE_NVIDIA
    // The checks of the composed ops above, for the one kernel, which also steps q, k and v
    // at their row pitch (each token's heads packed).
    ops::check_rope(op, q, q, pos, theta);
    ops::check_rope(op, k, k, pos, theta);
    ops::check_same_dtype(op, {q, k});
    ops::check_rows_contiguous(op, {q, k, v});
    CHECK_SHAPE(k->dim(2) == q->dim(2), op, ": q ", shape_str(q->shape()), " and k ",
                shape_str(k->shape()), " differ in head dim");
    check_array(op, cells, LLAISYS_DTYPE_I64, "cells");
    check_rows(op, k_cache, cells, k, true);
    check_rows(op, v_cache, cells, v, true);
    if (backup_k) {
        check_rows(op, k_cache, cells, backup_k);
        check_rows(op, v_cache, cells, backup_v);
    }
    const size_t n = q->dim(0);
    nvidia::rope_store_kv(
        q->data(), k->data(), v->data(), reinterpret_cast<const int64_t *>(pos->data()),
        reinterpret_cast<const int64_t *>(cells->data()), k_cache->data(), v_cache->data(),
        backup_k ? backup_k->data() : nullptr, backup_v ? backup_v->data() : nullptr, q->dtype(), n,
        q->dim(1), k->dim(1), q->dim(2), v->dim(2),
        {ops::row_stride(q), ops::row_stride(k), ops::row_stride(v)}, theta);
#endif
}

void paged_attention(tensor_t out, tensor_t q, tensor_t k_cache, tensor_t v_cache,
                     const KeyMap &keys, float scale) {
    const char *op = "paged_attention";
    ops::check_not_null(op, {&out, &q, &k_cache, &v_cache, &keys.table, &keys.row, &keys.n_keys});
    ops::check_same_device(op, {out, q, k_cache, v_cache, keys.table, keys.row, keys.n_keys});
    ops::check_same_dtype(op, {out, q, k_cache, v_cache});
    ops::check_dtype(op, keys.table, LLAISYS_DTYPE_I32, "table");
    ops::check_dtype(op, keys.row, LLAISYS_DTYPE_I64, "row");
    ops::check_dtype(op, keys.n_keys, LLAISYS_DTYPE_I32, "n_keys");
    ops::check_contiguous(op, {out, k_cache, v_cache, keys.table, keys.row, keys.n_keys});
    for (const tensor_t *t : {&out, &q, &k_cache, &v_cache}) ops::check_ndim(op, *t, 3, "operand");
    // The GPU reads q at its row pitch (a head range of a fused q/k/v product).
    if (q->device_type() == LLAISYS_DEVICE_NVIDIA)
        ops::check_rows_contiguous(op, {q});
    else
        ops::check_contiguous(op, {q});
    const cpu::AttentionShape s{q->dim(0), q->dim(1), k_cache->dim(1), q->dim(2), v_cache->dim(2)};
    const std::vector<size_t> out_shape{s.n, s.nh, s.dv}, per_token{s.n};
    const bool fits = s.nkvh > 0 && s.nh % s.nkvh == 0 && k_cache->dim(2) == s.d &&
                      v_cache->dim(0) == k_cache->dim(0) && v_cache->dim(1) == s.nkvh &&
                      out->shape() == out_shape && keys.row->shape() == per_token &&
                      keys.n_keys->shape() == per_token;
    CHECK_SHAPE(fits, op, ": shapes do not fit: q ", shape_str(q->shape()), ", k ",
                shape_str(k_cache->shape()), ", v ", shape_str(v_cache->shape()), ", out ",
                shape_str(out->shape()));
    CHECK_ARG(keys.block_size >= 1, op, ": block_size must be >= 1");
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::paged_attention(out->data(), q->data(), k_cache->data(), v_cache->data(),
                                    reinterpret_cast<const int32_t *>(keys.table->data()),
                                    reinterpret_cast<const int64_t *>(keys.row->data()),
                                    reinterpret_cast<const int32_t *>(keys.n_keys->data()),
                                    keys.block_size, s, scale, out->dtype());
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::paged_attention(
            out->data(), q->data(), k_cache->data(), v_cache->data(),
            reinterpret_cast<const int32_t *>(keys.table->data()),
            reinterpret_cast<const int64_t *>(keys.row->data()),
            reinterpret_cast<const int32_t *>(keys.n_keys->data()), keys.block_size, s,
            ops::row_stride(q), scale, out->dtype(), keys.max_keys, keys.max_run, keys.settled,
            out->device_id(),
            keys.scratch ? reinterpret_cast<float *>(keys.scratch->data()) : nullptr,
            keys.scratch ? keys.scratch->numel() : 0);
#endif
    default:
        ops::unsupported_device(op, out);
    }
}

size_t attention_scratch_floats(llaisysDeviceType_t device, size_t n, size_t nh, size_t dv) {
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device == LLAISYS_DEVICE_NVIDIA) return nvidia::attention_scratch_floats(n, nh, dv);
#endif
    (void)device, (void)n, (void)nh, (void)dv;
    return 0;
}

} // namespace llaisys::models
