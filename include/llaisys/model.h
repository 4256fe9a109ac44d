/*
 * model.h - decoder-only transformer models (Qwen2, Llama), their KV caches and the
 * batched decode call.
 *
 * One decoder serves every supported architecture; what differs (q/k/v biases, tied
 * embeddings) is data in LlaisysModelMeta. Weights are uploaded by their Hugging Face
 * names. A KV cache belongs to one model and lives on the model's device.
 */
#ifndef LLAISYS_MODEL_H
#define LLAISYS_MODEL_H

#include "ops.h"

typedef struct LlaisysModelMeta {
    llaisysDataType_t dtype; /* activations, KV cache and unquantized weights: F32/F16/BF16 */
    size_t n_layer;          /* >= 1 */
    size_t hidden_size;      /* = n_head * head_dim is not required */
    size_t n_head;           /* query heads, a multiple of n_kv_head */
    size_t n_kv_head;
    size_t head_dim;          /* even */
    size_t intermediate_size; /* MLP width */
    size_t vocab_size;
    size_t max_position; /* positions must be < max_position */
    float rms_norm_eps;
    float rope_theta;
    int32_t attention_bias;      /* 1: q/k/v projections carry biases (Qwen2) */
    int32_t tie_word_embeddings; /* 1: lm_head.weight is model.embed_tokens.weight */
} LlaisysModelMeta;

typedef struct LlaisysModel *llaisysModel_t;

/* Creates a model with unset weights on a device. */
__C LLAISYS_API llaisysStatus_t llaisysModelCreate(const LlaisysModelMeta *meta,
                                                   llaisysDeviceType_t device, int device_id,
                                                   llaisysModel_t *out);
__C LLAISYS_API void llaisysModelDestroy(llaisysModel_t model);
__C LLAISYS_API llaisysStatus_t llaisysModelGetMeta(llaisysModel_t model, LlaisysModelMeta *out);

/* Uploads one weight from host memory, by its Hugging Face name:
 *   model.embed_tokens.weight [vocab, hidden]      model.norm.weight [hidden]
 *   lm_head.weight [vocab, hidden] (not when tied)
 *   model.layers.{i}.input_layernorm.weight        model.layers.{i}.post_attention_layernorm.weight
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight, .{q,k,v}_proj.bias (attention_bias)
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight
 * data holds the tensor contiguously in dtype (F32/F16/BF16, converted to meta.dtype, or
 * Q8_0/Q4_0/Q4_1 for projection matrices and lm_head, kept quantized on CPU when
 * meta.dtype is F32, else dequantized). The data is copied; the caller may free it on
 * return. Unknown name, wrong shape or dtype: an error naming the weight. */
__C LLAISYS_API llaisysStatus_t llaisysModelSetWeight(llaisysModel_t model, const char *name,
                                                      const void *data, llaisysDataType_t dtype,
                                                      const size_t *shape, size_t ndim);

/* LLAISYS_OK when every weight the meta requires is set, else LLAISYS_ERR_INVALID_ARGUMENT
 * naming the first missing one. Decode calls this itself. */
__C LLAISYS_API llaisysStatus_t llaisysModelCheckWeights(llaisysModel_t model);

/* ---------------------------------------------------------------- KV cache -- */

typedef enum llaisysKvLayout {
    /* The core owns n_cells cells, each tagged with a position and a set of sequence
     * ids (like llama.cpp's unified cache). Decode places new tokens in free cells. */
    LLAISYS_KV_LAYOUT_SLOT = 0,
    /* Paged: n_cells = n_blocks * block_size. The caller owns block allocation; each
     * batch names every token's slot and every sequence's block table. */
    LLAISYS_KV_LAYOUT_BLOCK = 1
} llaisysKvLayout_t;

typedef struct LlaisysKvCacheParams {
    llaisysKvLayout_t layout;
    size_t n_cells;    /* token capacity, >= 1; BLOCK: a multiple of block_size */
    size_t block_size; /* BLOCK: tokens per block, >= 1; SLOT: ignored */
    int32_t n_seq_max; /* SLOT: sequence ids lie in [0, n_seq_max); BLOCK: ignored */
} LlaisysKvCacheParams;

typedef struct LlaisysKvCacheStats {
    size_t capacity; /* cells */
    size_t used;     /* cells holding a token (SLOT) / cells written and not released (BLOCK) */
    size_t free;     /* capacity - used */
    size_t peak;     /* highest used seen */
    size_t bytes;    /* device memory of the K and V arrays */
} LlaisysKvCacheStats;

typedef struct LlaisysKvCache *llaisysKvCache_t;

__C LLAISYS_API llaisysStatus_t llaisysKvCacheCreate(llaisysModel_t model,
                                                     const LlaisysKvCacheParams *params,
                                                     llaisysKvCache_t *out);
__C LLAISYS_API void llaisysKvCacheDestroy(llaisysKvCache_t kv);
__C LLAISYS_API llaisysStatus_t llaisysKvCacheGetStats(llaisysKvCache_t kv,
                                                       LlaisysKvCacheStats *out);
/* Forgets every token (both layouts). */
__C LLAISYS_API llaisysStatus_t llaisysKvCacheClear(llaisysKvCache_t kv);
/* BLOCK: marks the cells of these blocks unused in the stats (their contents stay, so
 * the caller may still reuse them as a cached prefix). Block ids in [0, n_blocks). */
__C LLAISYS_API llaisysStatus_t llaisysKvCacheReleaseBlocks(llaisysKvCache_t kv,
                                                            const int32_t *block_ids, size_t n);

/* SLOT sequence operations (LLAISYS_ERR_UNSUPPORTED on BLOCK). Position ranges are
 * [p0, p1); p0 < 0 means 0, p1 < 0 means infinity. seq_id < 0 means every sequence. */
/* Removes seq_id's tag from its cells in the range; a cell with no tag left is freed. */
__C LLAISYS_API llaisysStatus_t llaisysKvSeqRemove(llaisysKvCache_t kv, int32_t seq_id, int64_t p0,
                                                   int64_t p1);
/* Tags src's cells in the range with dst too: dst shares them (prefix sharing, no copy). */
__C LLAISYS_API llaisysStatus_t llaisysKvSeqCopy(llaisysKvCache_t kv, int32_t src, int32_t dst,
                                                 int64_t p0, int64_t p1);
/* Removes every sequence but seq_id. */
__C LLAISYS_API llaisysStatus_t llaisysKvSeqKeep(llaisysKvCache_t kv, int32_t seq_id);
/* *out = the largest position seq_id holds, -1 when it holds none. */
__C LLAISYS_API llaisysStatus_t llaisysKvSeqPosMax(llaisysKvCache_t kv, int32_t seq_id,
                                                   int64_t *out);

/* ------------------------------------------------------------------ decode -- */

/* One forward step over tokens of many sequences: prompt chunks and single decode
 * tokens mixed. All arrays are host memory owned by the caller. A token at position p
 * of sequence s attends to s's positions 0..p (those of earlier calls and those earlier
 * in this batch). Within a batch, a sequence's tokens come in increasing consecutive
 * positions; in SLOT layout the first continues the sequence (pos = PosMax + 1). */
typedef struct LlaisysBatch {
    int32_t n_tokens;      /* >= 1 */
    const int64_t *token;  /* [n_tokens] ids in [0, vocab_size) */
    const int64_t *pos;    /* [n_tokens] in [0, max_position) */
    const int32_t *seq_id; /* [n_tokens] SLOT: in [0, n_seq_max); BLOCK: row of block_tables */
    const int8_t *output;  /* [n_tokens] nonzero: produce an output row; NULL: last token only */
    /* [n_tokens] or NULL. Where prev_row[i] >= 0, token i is the id this model sampled for
     * output row prev_row[i] of its previous decode call (token[i] is ignored): a step can be
     * queued before the previous step's ids reach the host. That call must have sampled and
     * succeeded (a call refused by its checks does not count). */
    const int32_t *prev_row;

    /* BLOCK layout only (ignored for SLOT). */
    const int64_t *slot;         /* [n_tokens] cell = block_tables[seq][pos / bs] * bs + pos % bs */
    int32_t n_seqs;              /* rows of block_tables */
    int32_t block_table_width;   /* columns of block_tables */
    const int32_t *block_tables; /* [n_seqs * width]; column j holds the block of positions
                                    j*bs .. j*bs+bs-1; -1 where there is none */

    /* Outputs, one row per flagged token in token order (n_outputs rows). */
    const LlaisysSamplingParams *sampling; /* [n_outputs], or NULL: no sampling */
    int64_t *out_token;                    /* [n_outputs]; required when sampling != NULL */
    float *out_logits;                     /* [n_outputs * vocab_size] f32, or NULL */
} LlaisysBatch;

/* Runs the batch. Returns
 *   LLAISYS_OK                  outputs written, the batch's tokens are in the cache;
 *   LLAISYS_ERR_NO_KV_SPACE     SLOT: not enough free cells;
 *   LLAISYS_ERR_INVALID_BATCH   token id >= vocab, bad position or sequence id, slot out of
 *                               range or not matching the block table, table too short...;
 *   any other code              the forward failed (message says why).
 * On every failure the KV cache holds exactly what it held before the call. */
__C LLAISYS_API llaisysStatus_t llaisysModelDecode(llaisysModel_t model, llaisysKvCache_t kv,
                                                   const LlaisysBatch *batch);

/* Testing: the model's next forward pass stops as it reaches layer `layer` (0-based, before
 * that layer's work is queued) and its decode call fails with LLAISYS_ERR_INTERNAL, once, as
 * a failed kernel launch would. It makes checkable what a failed call promises where no real
 * fault can be made: the KV cache as before (the cells the earlier layers wrote restored),
 * and later calls run as if it had not been made (a next call's prev_row names the failed
 * call, so it passes its tokens). layer < 0 disarms it. A GPU step replayed from a captured
 * graph runs no forward pass on the host and is not stopped. */
__C LLAISYS_API llaisysStatus_t llaisysModelFailAtLayer(llaisysModel_t model, int32_t layer);

/* Decode steps that llaisysModelDecodeAsync may leave pending at once. */
#define LLAISYS_MAX_PENDING_DECODES 2

/* llaisysModelDecode that may return once the step is queued on the device, so the host can
 * prepare and queue the next step while the device computes (async scheduling; with
 * prev_row the next step needs no ids from this one). The input arrays may be reused on
 * return. Every successful call leaves one pending step, on the CPU too (where it has run
 * already): its out_token is written when llaisysModelSynchronize waits for it, so it must
 * stay valid until then (out_logits is written before return, and a call asking for logits
 * waits for every step). At most LLAISYS_MAX_PENDING_DECODES steps are pending: a call that
 * would exceed it first waits for the oldest, as Synchronize does. llaisysModelDecode waits
 * for every step, its own included. Return codes, and what they say about the cache, are
 * llaisysModelDecode's; a call that fails leaves none of its own work pending (after its
 * checks passed, it waits for every step first). A device fault while a step runs is
 * reported by Synchronize. */
__C LLAISYS_API llaisysStatus_t llaisysModelDecodeAsync(llaisysModel_t model, llaisysKvCache_t kv,
                                                        const LlaisysBatch *batch);

/* Waits for the model's pending steps, oldest first, until at most max_pending remain, and
 * writes the out_token of each step waited for (max_pending 0: all). An error here is a device
 * fault: the steps' KV writes and outputs are lost and the device needs a restart. */
__C LLAISYS_API llaisysStatus_t llaisysModelSynchronize(llaisysModel_t model, int32_t max_pending);

#endif /* LLAISYS_MODEL_H */
