// llaisysModelDecode: batch validation, KV placement, the forward pass and outputs.
#include "models/kv_kernels.hpp"
#include "models/model.hpp"
#include "ops/ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <string>
#include <unordered_map>

namespace llaisys::models {

// A batch that passed validation, as host vectors; cells and the key map are filled once
// the cache has placed the tokens.
struct Step {
    size_t n = 0;
    std::vector<int64_t> tokens, pos;
    std::vector<int32_t> seq;
    std::vector<int32_t> prev_row; // empty: every token given (LlaisysBatch.prev_row)
    tensor_t prev_ids;             // the ids prev_row indexes: the previous step's samples
    std::vector<int64_t> out_rows; // token rows producing outputs, in token order (none when
                                   // the batch asks for neither tokens nor logits)
    std::vector<int64_t> cells;    // cache cell of each token
    std::vector<int32_t> key_table;
    std::vector<int64_t> key_row;
    std::vector<int32_t> n_keys;
    size_t block_size = 1;
};

namespace {

template <typename... Args> [[noreturn]] void bad_batch(const Args &...args) {
    fail(LLAISYS_ERR_INVALID_BATCH, "invalid batch: ", args...);
}

// prev_sampled: rows the model's previous decode call sampled (what prev_row may name).
Step validate(const LlaisysModelMeta &m, const KvCache &kv, const LlaisysBatch &b,
              size_t prev_sampled) {
    if (b.n_tokens < 1) bad_batch("n_tokens must be >= 1, got ", b.n_tokens);
    if (!b.token || !b.pos || !b.seq_id) bad_batch("token, pos and seq_id are required");
    if ((b.sampling == nullptr) != (b.out_token == nullptr))
        bad_batch("sampling and out_token must be given together");
    const bool block = kv.layout() == LLAISYS_KV_LAYOUT_BLOCK;
    Step s;
    s.n = size_t(b.n_tokens);
    s.tokens.assign(b.token, b.token + s.n);
    s.pos.assign(b.pos, b.pos + s.n);
    s.seq.assign(b.seq_id, b.seq_id + s.n);
    if (b.prev_row && std::any_of(b.prev_row, b.prev_row + s.n, [](int32_t r) { return r >= 0; }))
        s.prev_row.assign(b.prev_row, b.prev_row + s.n);

    if (block) {
        if (!b.slot) bad_batch("BLOCK layout needs slot");
        if (b.n_seqs < 1 || b.block_table_width < 1 || !b.block_tables)
            bad_batch("BLOCK layout needs block_tables with n_seqs >= 1 and width >= 1");
    }
    const std::vector<int64_t> pos_max = block ? std::vector<int64_t>() : kv.pos_max_all();
    const int64_t n_seqs = block ? b.n_seqs : kv.n_seq_max();
    const size_t bs = kv.block_size(), width = block ? size_t(b.block_table_width) : 0;
    std::unordered_map<int32_t, int64_t> last_pos; // per sequence, within the batch
    for (size_t i = 0; i < s.n; ++i) {
        const int64_t tok = s.tokens[i], p = s.pos[i];
        const int32_t q = s.seq[i];
        if (!s.prev_row.empty() && s.prev_row[i] >= 0) {
            if (size_t(s.prev_row[i]) >= prev_sampled)
                bad_batch("token ", i, ": prev_row ", s.prev_row[i],
                          " but the previous decode call sampled ", prev_sampled, " rows");
            s.tokens[i] = 0; // taken on the device
        } else if (tok < 0 || uint64_t(tok) >= m.vocab_size) {
            bad_batch("token ", i, ": id ", tok, " out of range [0, ", m.vocab_size, ")");
        }
        if (p < 0 || uint64_t(p) >= m.max_position)
            bad_batch("token ", i, ": position ", p, " out of range [0, ", m.max_position, ")");
        if (q < 0 || q >= n_seqs)
            bad_batch("token ", i, ": sequence ", q, " out of range [0, ", n_seqs, ")",
                      block ? " (rows of block_tables)" : " (n_seq_max)");
        auto it = last_pos.find(q);
        if (it != last_pos.end()) {
            if (p != it->second + 1)
                bad_batch("token ", i, ": sequence ", q, " jumps from position ", it->second,
                          " to ", p, " (positions must be consecutive)");
            it->second = p;
        } else {
            if (!block && p != pos_max[q] + 1)
                bad_batch("token ", i, ": sequence ", q, " starts at position ", p,
                          " but the cache holds it up to ", pos_max[q], " (expected ",
                          pos_max[q] + 1, ")");
            last_pos.emplace(q, p);
        }
    }
    if (block) {
        // Every block a token reads must exist: columns 0..last_pos/bs of its sequence.
        for (const auto &[q, last] : last_pos) {
            const size_t cols = size_t(last) / bs + 1;
            if (cols > width)
                bad_batch("sequence ", q, " reaches position ", last, " but its block table has ",
                          width, " columns of ", bs, " positions");
            for (size_t j = 0; j < cols; ++j) {
                const int32_t blk = b.block_tables[size_t(q) * width + j];
                if (blk < 0 || size_t(blk) >= kv.n_blocks())
                    bad_batch("sequence ", q, ": block table column ", j, " holds block ", blk,
                              ", outside [0, ", kv.n_blocks(), ")");
            }
        }
        s.cells.assign(b.slot, b.slot + s.n);
        for (size_t i = 0; i < s.n; ++i) {
            const int64_t slot = s.cells[i], p = s.pos[i];
            if (slot < 0 || uint64_t(slot) >= kv.n_cells())
                bad_batch("token ", i, ": slot ", slot, " out of range [0, ", kv.n_cells(), ")");
            const int64_t expect =
                int64_t(b.block_tables[size_t(s.seq[i]) * width + size_t(p) / bs]) * int64_t(bs) +
                p % int64_t(bs);
            if (slot != expect)
                bad_batch("token ", i, ": slot ", slot,
                          " does not match the block table of sequence ", s.seq[i], " at position ",
                          p, " (expected ", expect, ")");
        }
        std::vector<int64_t> sorted = s.cells;
        std::sort(sorted.begin(), sorted.end());
        auto dup = std::adjacent_find(sorted.begin(), sorted.end());
        if (dup != sorted.end()) bad_batch("slot ", *dup, " is written by two tokens");
        s.key_table.assign(b.block_tables, b.block_tables + size_t(b.n_seqs) * width);
        s.block_size = bs;
        for (size_t i = 0; i < s.n; ++i) {
            s.key_row.push_back(int64_t(s.seq[i]) * int64_t(width));
            s.n_keys.push_back(int32_t(s.pos[i] + 1));
        }
    }
    for (size_t i = 0; i < s.n; ++i)
        if (b.output ? b.output[i] != 0 : i + 1 == s.n) s.out_rows.push_back(int64_t(i));
    if (b.sampling)
        for (size_t r = 0; r < s.out_rows.size(); ++r) {
            const LlaisysSamplingParams &sp = b.sampling[r];
            if (!std::isfinite(sp.temperature) || !(sp.top_p > 0.f && sp.top_p <= 1.f) ||
                !(sp.min_p >= 0.f && sp.min_p <= 1.f))
                bad_batch("output ", r, ": sampling params out of range (temperature ",
                          sp.temperature, ", top_p ", sp.top_p, " in (0, 1], min_p ", sp.min_p,
                          " in [0, 1])");
        }
    if (!b.sampling && !b.out_logits) s.out_rows.clear();
    return s;
}

// SLOT: each sequence's cells ordered by position, concatenated; a token reads the cells
// of its sequence up to its own position.
void slot_key_map(const KvCache &kv, Step &s) {
    std::vector<int32_t> seqs;
    std::unordered_map<int32_t, size_t> row_of;
    for (int32_t q : s.seq)
        if (row_of.emplace(q, seqs.size()).second) seqs.push_back(q);
    const auto lists = kv.seq_cells(seqs);
    std::vector<int64_t> start(seqs.size());
    for (size_t r = 0; r < seqs.size(); ++r) {
        start[r] = int64_t(s.key_table.size());
        for (const KvCache::Cell &c : lists[r]) s.key_table.push_back(c.cell);
    }
    s.block_size = 1;
    for (size_t i = 0; i < s.n; ++i) {
        const size_t r = row_of[s.seq[i]];
        const auto &cells = lists[r];
        const auto end =
            std::upper_bound(cells.begin(), cells.end(), s.pos[i],
                             [](int64_t p, const KvCache::Cell &c) { return p < c.pos; });
        s.key_row.push_back(start[r]);
        s.n_keys.push_back(int32_t(end - cells.begin()));
    }
}

tensor_t rows(const tensor_t &t, size_t n) { return t->slice(0, 0, n); }

// Longest run of consecutive tokens of one sequence (they share a key list).
size_t longest_run(const std::vector<int32_t> &seq) {
    size_t longest = 0, run = 0;
    for (size_t i = 0; i < seq.size(); ++i) {
        run = i > 0 && seq[i] == seq[i - 1] ? run + 1 : 1;
        longest = std::max(longest, run);
    }
    return longest;
}

} // namespace

template <typename T>
tensor_t Model::upload(tensor_t &buf, llaisysDataType_t dtype, const std::vector<T> &host,
                       DeferredCopies *deferred) const {
    if (!buf || buf->numel() < host.size()) // grow by doubling: graph steps keep their buffers
        buf = new_tensor({std::max<size_t>({host.size(), 1, buf ? 2 * buf->numel() : 0})}, dtype);
    tensor_t v = rows(buf, host.size());
    if (deferred)
        deferred->push_back({v->data(), host.data(), v->nbytes()});
    else
        v->load(host.data());
    return v;
}

void Model::reserve(size_t tokens, size_t outputs, bool backups) {
    const LlaisysModelMeta &m = meta_;
    const llaisysDataType_t dt = m.dtype;
    if (tokens > ws_.tokens) { // start over: every token-sized buffer grows
        const size_t t = std::max(tokens, 2 * ws_.tokens);
        ws_ = Workspace{};
        ws_.tokens = t;
        ws_.x = new_tensor({t, m.hidden_size}, dt);
        ws_.xn = new_tensor({t, m.hidden_size}, dt);
        ws_.o = new_tensor({t, m.hidden_size}, dt);
        ws_.attn = new_tensor({t, m.n_head, m.head_dim}, dt);
        if (fuses_qkv()) {
            ws_.qkv = new_tensor({t, m.n_head + 2 * m.n_kv_head, m.head_dim}, dt);
        } else {
            ws_.q = new_tensor({t, m.n_head, m.head_dim}, dt);
            ws_.k = new_tensor({t, m.n_kv_head, m.head_dim}, dt);
            ws_.v = new_tensor({t, m.n_kv_head, m.head_dim}, dt);
        }
        ws_.gate = new_tensor({t, m.intermediate_size}, dt);
        ws_.up = new_tensor({t, m.intermediate_size}, dt);
        ws_.act = new_tensor({t, m.intermediate_size}, dt);
    }
    if (backups && ws_.backup_k.empty())
        for (size_t l = 0; l < m.n_layer; ++l) {
            ws_.backup_k.push_back(new_tensor({ws_.tokens, m.n_kv_head, m.head_dim}, dt));
            ws_.backup_v.push_back(new_tensor({ws_.tokens, m.n_kv_head, m.head_dim}, dt));
        }
    if (outputs > ws_.outputs) {
        ws_.outputs = std::max(outputs, 2 * ws_.outputs);
        ws_.out_x = new_tensor({ws_.outputs, m.hidden_size}, dt);
        ws_.out_attn = new_tensor({ws_.outputs, m.n_head * m.head_dim}, dt);
        ws_.logits = new_tensor({ws_.outputs, m.vocab_size}, dt);
    }
    // Grown, not kept: a step that takes ids from the old tensor holds it (Step::prev_ids).
    if (!sampled_ids_ || sampled_ids_->numel() < outputs)
        sampled_ids_ = new_tensor({std::max<size_t>(outputs, 256)}, LLAISYS_DTYPE_I64);
}

// The layer after its attention; leaves xn = next_norm(x), the next layer's (or the final)
// norm of the residual stream, each residual add fused into the norm after it.
tensor_t Model::finish_layer(const Layer &w, const tensor_t &next_norm, const tensor_t &x,
                             const tensor_t &attn) {
    const size_t r = x->dim(0);
    const float eps = meta_.rms_norm_eps;
    const tensor_t o = rows(ws_.o, r), xn = rows(ws_.xn, r);
    const tensor_t gate = rows(ws_.gate, r), up = rows(ws_.up, r), act = rows(ws_.act, r);
    ops::linear_shared_input(attn, {{o, w.o, nullptr}});
    // Only the norm before the q/k/v product lets it start early: gate/up's first loads,
    // started beside the o product, slowed it by more than they gained (docs/gpu_notes.md,
    // sessions 16 and 17).
    ops::add_rms_norm(xn, x, o, w.post_norm, eps, true, false);
    ops::linear_swiglu(act, xn, {gate, w.gate, nullptr}, {up, w.up, nullptr}, true);
    ops::linear_shared_input(act, {{o, w.down, nullptr}});
    ops::add_rms_norm(xn, x, o, next_norm, eps, true, true);
    return xn;
}

Model::StepInputs Model::upload_step(const Step &s, DeferredCopies *deferred) {
    StepInputs in;
    in.tokens = upload(ws_.tokens_i, LLAISYS_DTYPE_I64, s.tokens, deferred);
    in.pos = upload(ws_.pos_i, LLAISYS_DTYPE_I64, s.pos, deferred);
    in.cells = upload(ws_.cells_i, LLAISYS_DTYPE_I64, s.cells, deferred);
    in.keys = KeyMap{upload(ws_.key_table_i, LLAISYS_DTYPE_I32, s.key_table, deferred),
                     upload(ws_.key_row_i, LLAISYS_DTYPE_I64, s.key_row, deferred),
                     upload(ws_.n_keys_i, LLAISYS_DTYPE_I32, s.n_keys, deferred),
                     s.block_size,
                     size_t(*std::max_element(s.n_keys.begin(), s.n_keys.end())),
                     longest_run(s.seq),
                     false,
                     nullptr};
    if (!s.out_rows.empty() && s.out_rows.size() < s.n)
        in.out_rows = upload(ws_.out_rows_i, LLAISYS_DTYPE_I64, s.out_rows, deferred);
    if (!s.prev_row.empty()) {
        in.prev_row = upload(ws_.prev_row_i, LLAISYS_DTYPE_I32, s.prev_row, deferred);
        in.prev_ids = s.prev_ids;
    }
    return in;
}

tensor_t Model::forward(KvCache &kv, const Step &s, const StepInputs &in,
                        size_t &layers_backed_up) {
    const LlaisysModelMeta &m = meta_;
    const size_t n = s.n;
    const bool block = kv.layout() == LLAISYS_KV_LAYOUT_BLOCK;
    const tensor_t &tokens = in.tokens, &pos = in.pos, &cells = in.cells;
    const KeyMap &keys = in.keys;
    const tensor_t x = rows(ws_.x, n), xn = rows(ws_.xn, n);
    const size_t qd = m.n_head * m.head_dim, kvd = m.n_kv_head * m.head_dim;
    const size_t nh = m.n_head, nkvh = m.n_kv_head;
    // Fused: q, k and v are head ranges of one product's rows.
    const tensor_t qkv = ws_.qkv ? rows(ws_.qkv, n) : nullptr;
    const tensor_t q = qkv ? qkv->slice(1, 0, nh) : rows(ws_.q, n);
    const tensor_t k = qkv ? qkv->slice(1, nh, nh + nkvh) : rows(ws_.k, n);
    const tensor_t v = qkv ? qkv->slice(1, nh + nkvh, nh + 2 * nkvh) : rows(ws_.v, n);
    const tensor_t attn = rows(ws_.attn, n);
    const tensor_t attn2 = attn->view({n, qd});
    const float scale = 1.f / std::sqrt(float(m.head_dim));

    if (in.prev_row) take_sampled_ids(tokens, in.prev_row, in.prev_ids);
    // The GPU gathers the rows without the embedding op's host check of the ids, which
    // waits for the step before: the ids were checked above, or taken from its samples.
    if (device_ == LLAISYS_DEVICE_NVIDIA)
        gather_rows(tokens, {{embed_, x}});
    else
        ops::embedding(x, tokens, embed_);
    ops::rms_norm(xn, x, layers_[0].input_norm, m.rms_norm_eps, true);
    for (size_t l = 0; l < m.n_layer; ++l) {
        if (int64_t(l) == fail_at_layer_) {
            fail_at_layer_ = -1;
            fail(LLAISYS_ERR_INTERNAL, "decode: stopped at layer ", l,
                 " (llaisysModelFailAtLayer)");
        }
        const Layer &w = layers_[l];
        const tensor_t &next_norm = l + 1 < m.n_layer ? layers_[l + 1].input_norm : norm_;
        if (qkv)
            ops::linear_shared_input(xn, {{qkv->view({n, qd + 2 * kvd}), w.qkv, w.qkv_bias}});
        else
            ops::linear_shared_input(xn, {{q->view({n, qd}), w.q, w.q_bias},
                                          {k->view({n, kvd}), w.k, w.k_bias},
                                          {v->view({n, kvd}), w.v, w.v_bias}});
        // A BLOCK cache keeps what the cells held, to restore it if the call fails.
        rope_store_kv(q, k, v, pos, m.rope_theta, kv.k(l), kv.v(l), cells,
                      block ? rows(ws_.backup_k[l], n) : nullptr,
                      block ? rows(ws_.backup_v[l], n) : nullptr);
        if (block) layers_backed_up = l + 1;
        paged_attention(attn, q, kv.k(l), kv.v(l), keys, scale);
        const size_t n_out = s.out_rows.size();
        if (l + 1 < m.n_layer || n_out == n) {
            finish_layer(w, next_norm, x, attn2);
            continue;
        }
        // The rest of the last layer only matters for the rows that produce outputs.
        if (n_out == 0) return nullptr;
        const tensor_t out_x = rows(ws_.out_x, n_out), out_attn = rows(ws_.out_attn, n_out);
        gather_rows(in.out_rows, {{x, out_x}, {attn2, out_attn}});
        return finish_layer(w, next_norm, out_x, out_attn);
    }
    return s.out_rows.empty() ? nullptr : xn;
}

tensor_t Model::logits_of(const tensor_t &out_xn) {
    const tensor_t logits = rows(ws_.logits, out_xn->dim(0));
    ops::linear_shared_input(out_xn, {{logits, lm_head_ ? lm_head_ : embed_, nullptr}});
    return logits;
}

void Model::write_outputs(const tensor_t &out_xn, const LlaisysBatch &b) {
    const size_t n_out = out_xn->dim(0);
    const tensor_t logits = logits_of(out_xn);
    if (b.sampling) {
        const tensor_t ids = rows(sampled_ids_, n_out);
        sampling_queued_ = true;
        ops::sample(ids, logits, b.sampling);
        send_ids(ids, b.out_token);
    }
    if (b.out_logits) {
        if (meta_.dtype == LLAISYS_DTYPE_F32) return logits->read(b.out_logits);
        std::vector<std::byte> host(logits->nbytes());
        logits->read(host.data());
        const size_t count = logits->numel();
        dispatch_float(meta_.dtype, "decode logits", [&](auto tag) {
            using T = std::remove_pointer_t<decltype(tag)>;
            const T *src = reinterpret_cast<const T *>(host.data());
            for (size_t i = 0; i < count; ++i) b.out_logits[i] = to_f32(src[i]);
        });
    }
}

void Model::restore(KvCache &kv, size_t n, size_t layers) {
    const tensor_t cells = rows(ws_.cells_i, n);
    for (size_t l = 0; l < layers; ++l) {
        scatter_rows(cells,
                     {{kv.k(l), rows(ws_.backup_k[l], n)}, {kv.v(l), rows(ws_.backup_v[l], n)}});
    }
}

void Model::send_ids(const tensor_t &ids, int64_t *out) {
    pending_ids_.push(reinterpret_cast<const int64_t *>(ids->data()), ids->numel(), out);
    ids_sent_ = true;
}

void Model::synchronize(size_t max_pending) { pending_ids_.wait_until(max_pending); }

void Model::decode(KvCache &kv, const LlaisysBatch &batch, bool wait) {
    CHECK_ARG(&kv.model() == this, "decode: the KV cache belongs to another model");
    check_weights();
    Step s = validate(meta_, kv, batch, sampled_rows_);
    s.prev_ids = sampled_ids_;
    const size_t n_out = s.out_rows.size(); // a graph step pads out_rows
    const tensor_t kept_ids = sampled_ids_;
    const size_t kept_rows = sampled_rows_;
    sampled_rows_ = 0; // until this call has sampled
    sampling_queued_ = ids_sent_ = false;
    try {
        if (graph_step(kv, s, batch))
            decode_graph(kv, s, batch);
        else
            decode_direct(kv, s, batch);
    } catch (...) {
        // Nothing of this call stays pending (its out_token is valid until it returns), and
        // a call that failed before it sampled leaves the ids the next may take.
        try {
            synchronize(0);
        } catch (...) {}
        if (!sampling_queued_) sampled_ids_ = kept_ids, sampled_rows_ = kept_rows;
        throw;
    }
    if (!ids_sent_) pending_ids_.push(nullptr, 0, nullptr); // one entry a queued call
    if (batch.sampling) sampled_rows_ = n_out;
    // Logits were read back already (the stream waited); their ids are no reason to wait.
    if (wait || batch.out_logits) synchronize(0);
}

void Model::decode_direct(KvCache &kv, Step &s, const LlaisysBatch &batch) {
    const bool block = kv.layout() == LLAISYS_KV_LAYOUT_BLOCK;
    reserve(s.n, s.out_rows.size(), block);
    if (!block) s.cells = kv.allocate(s.pos, s.seq); // LLAISYS_ERR_NO_KV_SPACE: nothing taken
    size_t layers_backed_up = 0;
    try {
        if (!block) slot_key_map(kv, s);
        const StepInputs in = upload_step(s);
        if (const tensor_t out_xn = forward(kv, s, in, layers_backed_up))
            write_outputs(out_xn, batch);
    } catch (...) {
        if (block)
            restore(kv, s.n, layers_backed_up);
        else
            kv.unallocate(s.cells);
        throw;
    }
    if (block) kv.mark_written(s.cells);
    kv.update_peak();
}

// Batch sizes with a graph of their own; a step pads its batch to the next one.
constexpr size_t kGraphSizes[] = {1,   2,   4,   8,   16,  24,  32,  48,  64,  80, 96,
                                  112, 128, 144, 160, 176, 192, 208, 224, 240, 256};

bool Model::graph_step(const KvCache &kv, const Step &s, const LlaisysBatch &b) const {
#ifdef LLAISYS_ENABLE_NVIDIA
    static const bool enabled = [] {
        const char *env = std::getenv("LLAISYS_CUDA_GRAPHS");
        return !env || std::string(env) != "0";
    }();
    if (!enabled || device_ != LLAISYS_DEVICE_NVIDIA || kv.layout() != LLAISYS_KV_LAYOUT_BLOCK ||
        !b.sampling || b.out_logits || s.out_rows.size() != s.n ||
        s.n > kGraphSizes[std::size(kGraphSizes) - 1])
        return false;
    std::vector<int32_t> seqs = s.seq; // one token of each sequence: a decode step
    std::sort(seqs.begin(), seqs.end());
    return std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end();
#else
    (void)kv, (void)s, (void)b;
    return false;
#endif
}

std::vector<const void *> Model::graph_buffers(const KvCache &kv, const tensor_t &prev_ids) const {
    std::vector<const void *> p;
    auto add = [&](const tensor_t &t) { p.push_back(t ? t->data() : nullptr); };
    add(prev_ids);
    add(sampled_ids_);
    add(ws_.prev_row_i);
    // Graph steps run on the GPU, where q, k and v are views of the fused q/k/v tensors.
    for (const tensor_t *t :
         {&ws_.x,         &ws_.xn,           &ws_.qkv,       &ws_.attn,     &ws_.o,
          &ws_.gate,      &ws_.up,           &ws_.act,       &ws_.logits,   &ws_.tokens_i,
          &ws_.pos_i,     &ws_.cells_i,      &ws_.key_row_i, &ws_.n_keys_i, &ws_.key_table_i,
          &ws_.params_u8, &ws_.attn_scratch, &embed_,        &norm_,        &lm_head_})
        add(*t);
#ifdef LLAISYS_ENABLE_NVIDIA
    for (const void *b : mailbox_.buffers()) p.push_back(b);
#endif
    for (size_t l = 0; l < meta_.n_layer; ++l) {
        add(ws_.backup_k[l]);
        add(ws_.backup_v[l]);
        add(kv.k(l));
        add(kv.v(l));
        const Layer &w = layers_[l];
        for (const tensor_t *t :
             {&w.input_norm, &w.post_norm, &w.qkv, &w.qkv_bias, &w.o, &w.gate, &w.up, &w.down})
            add(*t);
    }
    return p;
}

// The step padded to a graph size by repeating its first token (rope_store_kv skips the
// copies: they write nothing to the cache), replayed from the graph of that size.
void Model::decode_graph(KvCache &kv, Step &s, const LlaisysBatch &b) {
#ifdef LLAISYS_ENABLE_NVIDIA
    const size_t n = s.n;
    const size_t nb = *std::lower_bound(std::begin(kGraphSizes), std::end(kGraphSizes), n);
    const std::vector<int64_t> cells = s.cells;
    std::vector<LlaisysSamplingParams> params(b.sampling, b.sampling + n);
    for (size_t i = n; i < nb; ++i) {
        s.tokens.push_back(s.tokens[0]);
        s.pos.push_back(s.pos[0]);
        s.seq.push_back(s.seq[0]);
        s.cells.push_back(s.cells[0]);
        s.key_row.push_back(s.key_row[0]);
        s.n_keys.push_back(s.n_keys[0]);
        if (!s.prev_row.empty()) s.prev_row.push_back(s.prev_row[0]);
        params.push_back(params[0]);
    }
    s.n = nb;
    s.out_rows.resize(nb);
    for (size_t i = 0; i < nb; ++i) s.out_rows[i] = int64_t(i);
    const size_t max_nb = kGraphSizes[std::size(kGraphSizes) - 1];
    reserve(max_nb, max_nb, true);
    const LlaisysModelMeta &m = meta_;
    if (!ws_.attn_scratch) {
        ws_.attn_scratch = new_tensor(
            {attention_scratch_floats(device_, max_nb, m.n_head, m.head_dim)}, LLAISYS_DTYPE_F32);
        const size_t cols = (m.max_position + s.block_size - 1) / s.block_size;
        ws_.key_table_i =
            new_tensor({std::max(max_nb * cols, s.key_table.size())}, LLAISYS_DTYPE_I32);
        ws_.params_u8 = new_tensor({max_nb * sizeof(LlaisysSamplingParams)}, LLAISYS_DTYPE_U8);
    }
    DeferredCopies staged;
    StepInputs in = upload_step(s, &staged);
    // One token a sequence: the padding copies of token 0 (discarded) must not count as a run,
    // or a graph would hold an idle prefill launch (or, captured at one padding and replayed
    // at another, attend the last tile by the other kernel).
    in.keys.max_run = 1;
    in.keys.settled = true; // one token a sequence: the keys before it are earlier steps'
    // The attention's split over the keys follows the longest context rounded up to a power
    // of two: one graph per batch size and context bucket.
    size_t bucket = 64;
    while (bucket < in.keys.max_keys) bucket *= 2;
    in.keys.max_keys = bucket;
    in.keys.scratch = ws_.attn_scratch;
    const tensor_t params_dev = rows(ws_.params_u8, nb * sizeof(LlaisysSamplingParams));
    staged.push_back({params_dev->data(), params.data(), params_dev->nbytes()});
    if (!mailbox_.fits(staged, max_nb)) {
        synchronize(0); // queued steps' ids sit in the slots that go
        mailbox_.reserve(staged, max_nb);
    }
    const tensor_t ids = rows(sampled_ids_, nb);
    // Layers whose backup rows hold what this step's cells held before it: those a direct run
    // reached, none while a graph is captured (nothing runs), all once the graph launched.
    size_t layers_backed_up = 0;
    try {
        // Steps taking ids on the device hold one more kernel: a graph of their own.
        const size_t takes = s.prev_row.empty() ? 0 : size_t(1) << 31;
        const int64_t *host_ids = mailbox_.stage(staged);
        sampling_queued_ = true;
        graphs_.run(nb << 32 | takes | bucket, graph_buffers(kv, s.prev_ids), [&](bool executes) {
            size_t captured_layers = 0;
            mailbox_.fetch();
            ops::sample(
                ids, logits_of(forward(kv, s, in, executes ? layers_backed_up : captured_layers)),
                params_dev);
            mailbox_.publish(reinterpret_cast<const int64_t *>(ids->data()), nb);
        });
        layers_backed_up = m.n_layer;
        pending_ids_.push_written(host_ids, n, b.out_token);
        ids_sent_ = true;
    } catch (...) {
        restore(kv, n, layers_backed_up); // the padding copies of token 0 backed nothing up
        try {
            mailbox_.resync(); // the step may have stopped before or after its fetch kernel
        } catch (...) {}
        throw;
    }
    kv.mark_written(cells);
    kv.update_peak();
#else
    (void)kv, (void)s, (void)b;
#endif
}

} // namespace llaisys::models
