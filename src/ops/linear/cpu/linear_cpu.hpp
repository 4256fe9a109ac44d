// CPU linear: out[m, n] = x[m, k] . W[n, k]^T + bias, f32 accumulation.
#pragma once

#include "core/dtype.hpp"

#include <cstddef>

namespace llaisys::ops::cpu {

// Operands of linear as the op validated them: x rows may have a pitch (ldx elements),
// W and out are contiguous, bias (same dtype as out) may be null. W is F32/F16/BF16 with x
// and out of the same dtype, or Q8_0/Q4_0/Q4_1 with x and out F32 (k a multiple of 32).
struct LinearOperands {
    std::byte *out;
    const std::byte *x;
    size_t ldx;
    const std::byte *w;
    const std::byte *bias;
    llaisysDataType_t wtype;
    llaisysDataType_t xtype;
    size_t m, n, k;
};

// Products of one input (same x, m, k and x dtype): where the streaming kernels run (few
// rows) and the weights share a dtype, one parallel pass covers the weight blocks of all of
// them, so a decode step pays one OpenMP region for a layer's q/k/v instead of three.
constexpr size_t kMaxSharedInput = 4;
void linear_shared_input(const LinearOperands *ops, size_t count);

// What the SIMD kernel families implement (one set per instruction set, picked at run time).
struct KernelArgs {
    const void *x; // [m, k] activations, row pitch ldx: f32, or BF16 where bf16_dot says so
    size_t ldx;
    const std::byte *w; // [n, k] weight rows of wtype
    size_t w_row_bytes;
    llaisysDataType_t wtype;
    const float *bias; // [n] or null
    std::byte *out;    // [m, n] contiguous; F32/F16/BF16 following wtype, F32 when quantized
    size_t m, n, k;
    int threads;
};

// gemm(a, count): count products of one input (a[i].x, m, k and threads equal).
namespace linear_generic {
void gemm(const KernelArgs *a, size_t count);
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst);
} // namespace linear_generic
namespace linear_avx2 {
void gemm(const KernelArgs *a, size_t count);
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst);
} // namespace linear_avx2
namespace linear_avx512 {
void gemm(const KernelArgs *a, size_t count);
// BF16 weights times BF16 activations with the AVX512-BF16 dot product (x is bf16).
void gemm_bf16_dot(const KernelArgs *a, size_t count);
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst);
} // namespace linear_avx512

} // namespace llaisys::ops::cpu
