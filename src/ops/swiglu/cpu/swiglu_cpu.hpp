#pragma once

#include "core/dtype.hpp"

namespace llaisys::ops::cpu {
// out = up * gate * sigmoid(gate) over n contiguous elements.
void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n);

// The AVX2 + FMA + F16C build of the elementwise loop, called only when cpu_features
// reports those.
namespace swiglu_avx2 {
void swiglu(float *out, const float *gate, const float *up, size_t n);
void swiglu(fp16_t *out, const fp16_t *gate, const fp16_t *up, size_t n);
void swiglu(bf16_t *out, const bf16_t *gate, const bf16_t *up, size_t n);
} // namespace swiglu_avx2
} // namespace llaisys::ops::cpu
