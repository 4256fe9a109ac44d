// The decoder shared by Qwen2 and Llama (include/llaisys/model.h): weights by Hugging
// Face name, and the batched decode step over a KV cache.
#pragma once

#include "llaisys/model.h"
#include "models/kv_cache.hpp"
#include "models/kv_kernels.hpp"
#include "models/nvidia/step_mailbox.hpp"
#include "models/pending_ids.hpp"
#include "tensor/tensor.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "models/nvidia/step_graph.hpp"
#endif

#include <string>
#include <unordered_map>
#include <vector>

namespace llaisys::models {

struct Step; // a validated batch (decode.cpp)

class Model {
public:
    Model(const LlaisysModelMeta &meta, llaisysDeviceType_t device, int device_id);

    const LlaisysModelMeta &meta() const { return meta_; }
    llaisysDeviceType_t device() const { return device_; }
    int device_id() const { return device_id_; }

    void set_weight(const std::string &name, const void *data, llaisysDataType_t dtype,
                    const std::vector<size_t> &shape);
    void check_weights() const;
    // Runs the batch after waiting for any pending step. wait = false
    // (llaisysModelDecodeAsync): a GPU step may return with its out_token still pending.
    void decode(KvCache &kv, const LlaisysBatch &batch, bool wait);
    // Waits for pending steps, oldest first, until at most max_pending remain, writing the
    // out_token of each.
    void synchronize(size_t max_pending);
    // llaisysModelFailAtLayer: the next forward pass to reach layer fails there (< 0: none).
    void fail_at_layer(int32_t layer) { fail_at_layer_ = layer; }

private:
    struct Layer {
        tensor_t input_norm, post_norm, q, k, v, o, q_bias, k_bias, v_bias, gate, up, down;
        // On the GPU q, k and v (and their biases) are row ranges of one matrix: one GEMM
        // for the three, where cuBLAS took three GEMMs and three bias fills at ~5 us each.
        tensor_t qkv, qkv_bias;
    };
    struct WeightSlot {
        std::string name;
        std::vector<size_t> shape;
        bool projection; // a matrix the linear op may take quantized
        tensor_t *dst;
        tensor_t *fused = nullptr;            // GPU: the weight is rows fused_row.. of *fused
        size_t fused_row = 0, fused_rows = 0; // fused_rows: rows of the whole *fused
    };
    // Per-step buffers sized to the largest batch seen; views of their first rows are used.
    struct Workspace {
        size_t tokens = 0, outputs = 0;
        tensor_t x, xn, q, k, v, attn, o, gate, up, act; // [tokens, ...]
        tensor_t qkv; // [tokens, nh + 2 nkvh, d]: a fused q/k/v product (q, k, v unused)
        std::vector<tensor_t> backup_k, backup_v; // BLOCK rollback, per layer
        tensor_t out_x, out_attn, logits;         // [outputs, ...]
        // Step metadata, each grown on its own.
        tensor_t tokens_i, pos_i, cells_i, out_rows_i, key_row_i, n_keys_i, key_table_i;
        tensor_t prev_row_i;   // LlaisysBatch.prev_row
        tensor_t params_u8;    // sampling params of a graph step, on the device
        tensor_t attn_scratch; // split partials of a graph step's attention
    };
    // A step's metadata on the device.
    struct StepInputs {
        tensor_t tokens, pos, cells;
        KeyMap keys;
        tensor_t out_rows;           // when only some rows produce outputs
        tensor_t prev_row, prev_ids; // tokens taken from the previous step's samples
    };

    // q/k/v as one matrix (Layer::qkv): on the GPU, where cuBLAS runs them as one GEMM.
    bool fuses_qkv() const { return device_ == LLAISYS_DEVICE_NVIDIA; }
    void add_weight(std::string name, std::vector<size_t> shape, bool projection, tensor_t *dst,
                    tensor_t *fused = nullptr, size_t fused_row = 0, size_t fused_rows = 0);
    tensor_t new_tensor(const std::vector<size_t> &shape, llaisysDataType_t dtype) const;
    void reserve(size_t tokens, size_t outputs, bool backups);
    // Copies of a step's metadata that a GPU graph step's first kernel makes (StepMailbox).
    using DeferredCopies = std::vector<nvidia::StepMailbox::Segment>;
    // Grows buf to hold host and copies host into its first host.size() elements, or leaves
    // the copy to deferred.
    template <typename T>
    tensor_t upload(tensor_t &buf, llaisysDataType_t dtype, const std::vector<T> &host,
                    DeferredCopies *deferred) const;
    StepInputs upload_step(const Step &step, DeferredCopies *deferred = nullptr);
    // Runs the layers, writing the batch's K/V; returns the final-normed hidden rows of the
    // output tokens (null when there are none). Launches work only (a graph step captures it).
    tensor_t forward(KvCache &kv, const Step &step, const StepInputs &in, size_t &layers_backed_up);
    tensor_t logits_of(const tensor_t &out_xn);
    // Attention output projection, residual and MLP of one layer over the rows of x; returns
    // next_norm of the result.
    tensor_t finish_layer(const Layer &w, const tensor_t &next_norm, const tensor_t &x,
                          const tensor_t &attn);
    void write_outputs(const tensor_t &out_xn, const LlaisysBatch &batch);
    // Queues this step's entry: ids (on the model's device) go to out when it is waited for.
    void send_ids(const tensor_t &ids, int64_t *out);
    void restore(KvCache &kv, size_t n, size_t layers);
    // Any step the graph path does not take: prompt chunks, mixed steps, logits, the CPU.
    void decode_direct(KvCache &kv, Step &step, const LlaisysBatch &batch);
    // GPU decode steps of one new token per sequence, all sampled, run as CUDA graphs.
    bool graph_step(const KvCache &kv, const Step &step, const LlaisysBatch &batch) const;
    void decode_graph(KvCache &kv, Step &step, const LlaisysBatch &batch);
    std::vector<const void *> graph_buffers(const KvCache &kv, const tensor_t &prev_ids) const;

    LlaisysModelMeta meta_;
    llaisysDeviceType_t device_;
    int device_id_;
    tensor_t embed_, norm_, lm_head_;
    std::vector<Layer> layers_;
    std::vector<WeightSlot> weights_; // every required weight, in upload-name order
    std::unordered_map<std::string, size_t> weight_index_;
    Workspace ws_;
    // The ids the last decode call drew (device) and how many rows of them are valid (0 when
    // it failed or did not sample): what the next call's prev_row may name. Kept out of ws_,
    // which starts over when the token buffers grow.
    tensor_t sampled_ids_;
    size_t sampled_rows_ = 0;
    // Of the decode call running: whether its sampler was queued (sampled_ids_ overwritten)
    // and whether its ids went to pending_ids_.
    bool sampling_queued_ = false, ids_sent_ = false;
    int32_t fail_at_layer_ = -1;
#ifdef LLAISYS_ENABLE_NVIDIA
    nvidia::StepGraphs graphs_;
    nvidia::StepMailbox mailbox_; // graph steps' metadata and ids
#endif
    // Last: destroyed first, it waits for work in flight before anything else goes.
    PendingIds pending_ids_;
};

} // namespace llaisys::models
