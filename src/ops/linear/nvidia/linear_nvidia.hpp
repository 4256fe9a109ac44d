#pragma once

#include "ops/linear/cpu/linear_cpu.hpp"

namespace llaisys::ops::nvidia {

// out[m, n] = x[m, k] . W[n, k]^T + bias through cuBLAS: F32/F16/BF16 operands of one
// dtype, f32 accumulation (no TF32). Quantized weights are not taken on the GPU.
// constant_weights: no queued work writes W, so a GEMV may load it before it waits for the
// kernel before it (programmatic dependent launch).
void linear(const cpu::LinearOperands &op, bool constant_weights);
// Products of one x (same m, k, ldx): one GEMV launch for all of them when each is
// decode-sized and their weights share a dtype, else one linear each.
void linear_shared_input(const cpu::LinearOperands *ops, size_t count, bool constant_weights);
// out = swiglu(gate, up) of the products ops[0] (gate) and ops[1] (up) in one GEMV launch
// that writes out alone; false (nothing launched) when the products are not decode-sized or
// their weights differ in dtype. constant_weights as for linear.
bool linear_swiglu(const cpu::LinearOperands *ops, std::byte *out, bool constant_weights);

} // namespace llaisys::ops::nvidia
