// Internal entry points of every operator (include/llaisys/ops.h documents semantics).
// Each validates its operands (throwing llaisys::Error) and dispatches on the device.
#pragma once

#include "llaisys/ops.h"
#include "tensor/tensor.hpp"

#include <initializer_list>

namespace llaisys::ops {

void add(tensor_t c, tensor_t a, tensor_t b);
void argmax(tensor_t max_idx, tensor_t max_val, tensor_t vals);
void embedding(tensor_t out, tensor_t index, tensor_t weight);
void linear(tensor_t out, tensor_t in, tensor_t weight, tensor_t bias /* may be null */);
// Up to 4 products of one input with model weights (a layer's q/k/v, its gate/up, or one
// product), each as linear(out, in, weight, bias): on the CPU one parallel pass over all their
// weights when they share a dtype. The weights must not be written by work still queued on
// the device: the GPU's GEMV starts loading them before it waits for the kernel before it.
struct LinearProduct {
    tensor_t out, weight, bias;
};
void linear_shared_input(tensor_t in, std::initializer_list<LinearProduct> products);
// out = swiglu(gate.out, up.out) of two products of in: the products land in gate.out and
// up.out, except where the device fuses them (the GPU's decode-sized GEMV writes out alone).
// constant_weights as for linear_shared_input (model weights: true).
void linear_swiglu(tensor_t out, tensor_t in, const LinearProduct &gate, const LinearProduct &up,
                   bool constant_weights);
// constant_weight: no work still queued on the device writes weight (model weights), so the
// GPU kernel loads it before it waits for the kernel before it.
void rms_norm(tensor_t out, tensor_t in, tensor_t weight, float eps, bool constant_weight);
// x += residual, then out = rms_norm(x): the residual add fused into the norm after it.
// next_early: the GPU kernel lets the kernel after it start before it waits for the one
// before it, so that kernel's loads of what no queued work writes (a GEMV's weights) overlap
// this one; a choice of speed, not of correctness.
void add_rms_norm(tensor_t out, tensor_t x, tensor_t residual, tensor_t weight, float eps,
                  bool constant_weight, bool next_early);
void rope(tensor_t out, tensor_t in, tensor_t pos_ids, float theta);
void self_attention(tensor_t out, tensor_t q, tensor_t k, tensor_t v, float scale);
void swiglu(tensor_t out, tensor_t gate, tensor_t up);
void check_swiglu(const tensor_t &out, const tensor_t &gate, const tensor_t &up);
void rearrange(tensor_t out, tensor_t in);
void sample(tensor_t out_ids, tensor_t logits, const LlaisysSamplingParams *params);
// The same with the params already in a U8 tensor on the logits' device, checked by the
// caller (no copy: a decode step captured as a CUDA graph samples this way).
void sample(tensor_t out_ids, tensor_t logits, const tensor_t &params);

} // namespace llaisys::ops
