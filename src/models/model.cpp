#include "models/model.hpp"

#include "device/runtime.hpp"
#include "models/weight_convert.hpp"

#include <cmath>

namespace llaisys::models {

namespace {

void check_meta(const LlaisysModelMeta &m) {
    CHECK_DTYPE(dtype_is_float(m.dtype), "model meta: dtype must be F32, F16 or BF16, got ",
                dtype_name(m.dtype));
    CHECK_ARG(m.n_layer >= 1, "model meta: n_layer must be >= 1");
    CHECK_ARG(
        m.hidden_size >= 1 && m.intermediate_size >= 1 && m.vocab_size >= 1 && m.max_position >= 1,
        "model meta: hidden_size, intermediate_size, vocab_size and max_position must be >= 1");
    CHECK_ARG(m.n_head >= 1 && m.n_kv_head >= 1 && m.n_head % m.n_kv_head == 0,
              "model meta: n_head (", m.n_head, ") must be a positive multiple of n_kv_head (",
              m.n_kv_head, ")");
    CHECK_ARG(m.head_dim >= 2 && m.head_dim % 2 == 0, "model meta: head_dim must be even, got ",
              m.head_dim);
    CHECK_ARG(std::isfinite(m.rms_norm_eps) && m.rms_norm_eps > 0.f,
              "model meta: rms_norm_eps must be > 0");
    CHECK_ARG(std::isfinite(m.rope_theta) && m.rope_theta > 0.f,
              "model meta: rope_theta must be > 0");
}

} // namespace

Model::Model(const LlaisysModelMeta &meta, llaisysDeviceType_t device, int device_id)
    : meta_(meta), device_(device), device_id_(device_id), layers_(meta.n_layer),
      pending_ids_(device) {
    check_meta(meta_);
    device::check_device(device, device_id);
    const size_t h = meta_.hidden_size, q = meta_.n_head * meta_.head_dim,
                 kv = meta_.n_kv_head * meta_.head_dim, inter = meta_.intermediate_size;
    add_weight("model.embed_tokens.weight", {meta_.vocab_size, h}, false, &embed_);
    add_weight("model.norm.weight", {h}, false, &norm_);
    if (!meta_.tie_word_embeddings)
        add_weight("lm_head.weight", {meta_.vocab_size, h}, true, &lm_head_);
    const size_t qkv_rows = q + 2 * kv;
    for (size_t i = 0; i < meta_.n_layer; ++i) {
        Layer &l = layers_[i];
        const std::string p = "model.layers." + std::to_string(i) + ".";
        add_weight(p + "input_layernorm.weight", {h}, false, &l.input_norm);
        add_weight(p + "post_attention_layernorm.weight", {h}, false, &l.post_norm);
        tensor_t *qkv = fuses_qkv() ? &l.qkv : nullptr;
        tensor_t *qkv_bias = fuses_qkv() ? &l.qkv_bias : nullptr;
        add_weight(p + "self_attn.q_proj.weight", {q, h}, true, &l.q, qkv, 0, qkv_rows);
        add_weight(p + "self_attn.k_proj.weight", {kv, h}, true, &l.k, qkv, q, qkv_rows);
        add_weight(p + "self_attn.v_proj.weight", {kv, h}, true, &l.v, qkv, q + kv, qkv_rows);
        add_weight(p + "self_attn.o_proj.weight", {h, q}, true, &l.o);
        if (meta_.attention_bias) {
            add_weight(p + "self_attn.q_proj.bias", {q}, false, &l.q_bias, qkv_bias, 0, qkv_rows);
            add_weight(p + "self_attn.k_proj.bias", {kv}, false, &l.k_bias, qkv_bias, q, qkv_rows);
            add_weight(p + "self_attn.v_proj.bias", {kv}, false, &l.v_bias, qkv_bias, q + kv,
                       qkv_rows);
        }
        add_weight(p + "mlp.gate_proj.weight", {inter, h}, true, &l.gate);
        add_weight(p + "mlp.up_proj.weight", {inter, h}, true, &l.up);
        add_weight(p + "mlp.down_proj.weight", {h, inter}, true, &l.down);
    }
}

void Model::add_weight(std::string name, std::vector<size_t> shape, bool projection, tensor_t *dst,
                       tensor_t *fused, size_t fused_row, size_t fused_rows) {
    weight_index_.emplace(name, weights_.size());
    weights_.push_back(WeightSlot{std::move(name), std::move(shape), projection, dst, fused,
                                  fused_row, fused_rows});
}

tensor_t Model::new_tensor(const std::vector<size_t> &shape, llaisysDataType_t dtype) const {
    return Tensor::create(shape, dtype, device_, device_id_);
}

void Model::set_weight(const std::string &name, const void *data, llaisysDataType_t dtype,
                       const std::vector<size_t> &shape) {
    auto it = weight_index_.find(name);
    if (it == weight_index_.end()) {
        CHECK_ARG(!(name == "lm_head.weight" && meta_.tie_word_embeddings),
                  "weight 'lm_head.weight' is not used: the model ties word embeddings");
        fail(LLAISYS_ERR_INVALID_ARGUMENT, "unknown weight '", name, "'");
    }
    const WeightSlot &w = weights_[it->second];
    CHECK_SHAPE(shape == w.shape, "weight '", name, "': shape ", shape_str(shape), ", expected ",
                shape_str(w.shape));
    const bool quantized = dtype_is_quantized(dtype);
    CHECK_DTYPE(dtype_is_float(dtype) || (quantized && shape.size() == 2), "weight '", name,
                "': dtype ", dtype_name(dtype),
                " is not accepted (F32/F16/BF16, or Q8_0/Q4_0/Q4_1 for matrices)");
    CHECK_SHAPE(!quantized || shape[1] % dtype_block_elems(dtype) == 0, "weight '", name,
                "': ", dtype_name(dtype), " needs rows of a multiple of 32 elements, got ",
                shape_str(shape));
    CHECK_ARG(data != nullptr, "weight '", name, "': null data");

    // CPU f32 models keep quantized projections as they are (the linear kernels dequantize
    // in registers).
    const bool cpu_quantized =
        quantized && meta_.dtype == LLAISYS_DTYPE_F32 && device_ == LLAISYS_DEVICE_CPU;
    const bool keep_quantized = cpu_quantized && w.projection;
    if (w.dst == &embed_ && meta_.tie_word_embeddings) {
        // Tied: lookups need the widened table, but the output projection reads every row
        // of it each step, so it keeps the quantized one (a quarter of the f32 bytes for
        // Q8_0). Otherwise it reads embed_.
        lm_head_ = nullptr;
        if (cpu_quantized) {
            lm_head_ = new_tensor(shape, dtype);
            lm_head_->load(data);
        }
    }
    tensor_t t;
    if (w.fused) { // rows of a meta_.dtype matrix: only weights converted to it fit
        CHECK_ARG(!keep_quantized, "weight '", name, "': a fused weight cannot stay quantized");
        if (!*w.fused) {
            std::vector<size_t> whole = shape;
            whole[0] = w.fused_rows;
            *w.fused = new_tensor(whole, meta_.dtype);
        }
        t = (*w.fused)->slice(0, w.fused_row, w.fused_row + shape[0]);
    }
    if (keep_quantized || dtype == meta_.dtype) {
        if (!t) t = new_tensor(shape, dtype);
        t->load(data);
        *w.dst = t;
        return;
    }
    if (!t) t = new_tensor(shape, meta_.dtype);
    if (device_ == LLAISYS_DEVICE_CPU) { // convert in place, no staging copy
        convert_weight(t->data(), meta_.dtype, data, dtype, t->numel());
    } else {
        std::vector<std::byte> staging(t->nbytes());
        convert_weight(staging.data(), meta_.dtype, data, dtype, t->numel());
        t->load(staging.data());
    }
    *w.dst = t;
}

void Model::check_weights() const {
    for (const WeightSlot &w : weights_) CHECK_ARG(*w.dst, "weight '", w.name, "' is not set");
}

} // namespace llaisys::models
