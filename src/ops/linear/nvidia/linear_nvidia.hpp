#pragma once

#include "ops/linear/cpu/linear_cpu.hpp"

namespace llaisys::ops::nvidia {

// out[m, n] = x[m, k] . W[n, k]^T + bias through cuBLAS: F32/F16/BF16 operands of one
// dtype, f32 accumulation (no TF32). Quantized weights are not taken on the GPU.
void linear(const cpu::LinearOperands &op);

} // namespace llaisys::ops::nvidia
