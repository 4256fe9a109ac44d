/*
 * ops.h - operators. Each computes into caller-allocated output tensors on the same
 * device as its inputs. Floating ops accept F32, F16 and BF16 (all operands of one
 * dtype) and accumulate in f32. Unless said otherwise operands must be contiguous.
 * Errors: LLAISYS_ERR_INVALID_ARGUMENT (null tensor), _SHAPE, _DTYPE, _DEVICE.
 */
#ifndef LLAISYS_OPS_H
#define LLAISYS_OPS_H

#include "tensor.h"

/* c = a + b, elementwise, identical shapes. */
__C LLAISYS_API llaisysStatus_t llaisysAdd(llaisysTensor_t c, llaisysTensor_t a, llaisysTensor_t b);

/* Per row of vals [rows, n] (or a 1-D vals as one row): max_idx [rows] I64 and
 * max_val [rows] (dtype of vals). Ties resolve to the lowest index. */
__C LLAISYS_API llaisysStatus_t llaisysArgmax(llaisysTensor_t max_idx, llaisysTensor_t max_val,
                                              llaisysTensor_t vals);

/* out [n, d] = weight [V, d] rows picked by index [n] (I64); an index outside [0, V)
 * is LLAISYS_ERR_INVALID_ARGUMENT and out is left untouched. */
__C LLAISYS_API llaisysStatus_t llaisysEmbedding(llaisysTensor_t out, llaisysTensor_t index,
                                                 llaisysTensor_t weight);

/* out [m, n] = in [m, k] . weight [n, k]^T + bias [n]; bias may be NULL. weight may
 * also be Q8_0, Q4_0 or Q4_1 (k a multiple of 32) with in/out F32: blocks are
 * dequantized in registers, activations stay f32. in may have a row stride. */
__C LLAISYS_API llaisysStatus_t llaisysLinear(llaisysTensor_t out, llaisysTensor_t in,
                                              llaisysTensor_t weight, llaisysTensor_t bias);

/* out [m, d] = in / sqrt(mean(in^2) + eps) * weight [d], per row. */
__C LLAISYS_API llaisysStatus_t llaisysRmsNorm(llaisysTensor_t out, llaisysTensor_t in,
                                               llaisysTensor_t weight, float eps);

/* x [m, d] += residual [m, d] (rounded to the dtype), then out = rms_norm(x, weight, eps):
 * a residual connection and the norm after it in one pass. */
__C LLAISYS_API llaisysStatus_t llaisysAddRmsNorm(llaisysTensor_t out, llaisysTensor_t x,
                                                  llaisysTensor_t residual, llaisysTensor_t weight,
                                                  float eps);

/* Rotary embedding, half-rotation layout (Qwen2/Llama): in/out [n, heads, d] (d even),
 * pos_ids [n] I64; pair (x[i], x[i + d/2]) rotated by pos * theta^(-2i/d). out may
 * alias in. */
__C LLAISYS_API llaisysStatus_t llaisysRope(llaisysTensor_t out, llaisysTensor_t in,
                                            llaisysTensor_t pos_ids, float theta);

/* Causal grouped-query attention. q [qlen, nh, d], k [klen, nkvh, d], v [klen, nkvh, dv],
 * out [qlen, nh, dv]; nh a multiple of nkvh; klen >= qlen. Query i sits at position
 * klen - qlen + i and attends to keys 0..klen-qlen+i. out = softmax(q.k^T * scale) v. */
__C LLAISYS_API llaisysStatus_t llaisysSelfAttention(llaisysTensor_t out, llaisysTensor_t q,
                                                     llaisysTensor_t k, llaisysTensor_t v,
                                                     float scale);

/* out = up * gate * sigmoid(gate), elementwise, identical shapes. */
__C LLAISYS_API llaisysStatus_t llaisysSwiGLU(llaisysTensor_t out, llaisysTensor_t gate,
                                              llaisysTensor_t up);

/* out [m, n] = swiglu(in . gate_weight^T + gate_bias, in . up_weight^T + up_bias): the
 * gate/up products of an MLP and the SwiGLU after them (biases may be NULL). gate and up
 * [m, n] are work space: they hold the products unless the device fuses them (the GPU does
 * for decode-sized in, m <= 8), so their contents afterwards are unspecified. */
__C LLAISYS_API llaisysStatus_t llaisysLinearSwiGLU(
    llaisysTensor_t out, llaisysTensor_t in, llaisysTensor_t gate_weight, llaisysTensor_t gate_bias,
    llaisysTensor_t up_weight, llaisysTensor_t up_bias, llaisysTensor_t gate, llaisysTensor_t up);

/* Strided copy: out and in have the same shape and dtype, any strides. */
__C LLAISYS_API llaisysStatus_t llaisysRearrange(llaisysTensor_t out, llaisysTensor_t in);

/* Per-row sampling controls. */
typedef struct LlaisysSamplingParams {
    float temperature; /* <= 0: greedy (argmax, lowest index on ties) */
    int32_t top_k;     /* keep the k most likely; <= 0: off */
    float top_p;       /* keep the smallest set with mass >= top_p; in (0, 1]; 1: off */
    float min_p;       /* drop tokens with p < min_p * p_max; in [0, 1]; 0: off */
    uint64_t seed;     /* random stream of this draw: same seed + same logits = same id */
} LlaisysSamplingParams;

/* out_ids [rows] I64 = one token per row of logits [rows, V] (F32/F16/BF16) under
 * params[rows]. Filters apply in the order temperature, top-k, top-p, min-p. */
__C LLAISYS_API llaisysStatus_t llaisysSample(llaisysTensor_t out_ids, llaisysTensor_t logits,
                                              const LlaisysSamplingParams *params);

#endif /* LLAISYS_OPS_H */
