// CPU linear: picks the kernel family of this CPU, widens F16/BF16 activations to f32, and
// chooses between the streaming register tiles (decode: few rows, bound by reading W once)
// and OpenBLAS sgemm (prefill: many rows, bound by arithmetic).
#include "ops/linear/cpu/linear_cpu.hpp"

#include "device/cpu/cpu_features.hpp"

#include <algorithm>
#include <cblas.h>
#include <vector>

namespace llaisys::ops::cpu {

namespace {

struct Kernels {
    void (*gemm)(const KernelArgs &);
    void (*gemm_bf16_dot)(const KernelArgs &); // null where the CPU lacks a bf16 dot product
    void (*rows_to_f32)(const std::byte *, size_t, llaisysDataType_t, size_t, size_t, float *,
                        size_t);
};

const Kernels &kernels() {
    static const Kernels k = [] {
        switch (device::cpu::kernel_path()) {
        case device::cpu::KernelPath::Avx512:
            return Kernels{linear_avx512::gemm, linear_avx512::gemm_bf16_dot,
                           linear_avx512::rows_to_f32};
        case device::cpu::KernelPath::Avx2:
            return Kernels{linear_avx2::gemm, nullptr, linear_avx2::rows_to_f32};
        default:
            return Kernels{linear_generic::gemm, nullptr, linear_generic::rows_to_f32};
        }
    }();
    return k;
}

// From this many rows on, the product is compute-bound and sgemm's packed micro-kernels
// beat the streaming tiles (scripts/bench_ops.py shows the crossover).
constexpr size_t kBlasMinRows = 32;
// Non-f32 weights reach sgemm as f32 panels of at most this many floats (16 MiB).
constexpr size_t kPanelFloats = size_t(4) << 20;
constexpr size_t kParallelMinElems = size_t(1) << 16;

// Grow-only per-thread scratch, so calls in steady state allocate nothing.
thread_local std::vector<float> t_x, t_bias, t_w, t_c;

float *scratch(std::vector<float> &buf, size_t n) {
    if (buf.size() < n) buf.resize(n);
    return buf.data();
}

void to_f32(const Kernels &kf, const std::byte *src, size_t src_row_bytes,
            llaisysDataType_t dtype, size_t rows, size_t k, float *dst, size_t ld, int threads) {
    const bool parallel = threads > 1 && rows > 1 && rows * k >= kParallelMinElems;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (ptrdiff_t r = 0; r < ptrdiff_t(rows); ++r)
        kf.rows_to_f32(src + size_t(r) * src_row_bytes, src_row_bytes, dtype, 1, k,
                       dst + size_t(r) * ld, ld);
}

// f32 panel [m, nb] (pitch nb) -> columns j0.. of the F16/BF16 output [m, n].
void store_panel(const KernelArgs &a, const float *c, size_t j0, size_t nb) {
    dispatch_float(a.wtype, "linear", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        T *out = reinterpret_cast<T *>(a.out);
        const bool parallel = a.threads > 1 && a.m * nb >= kParallelMinElems;
#pragma omp parallel for schedule(static) num_threads(a.threads) if (parallel)
        for (ptrdiff_t i = 0; i < ptrdiff_t(a.m); ++i)
            for (size_t j = 0; j < nb; ++j)
                out[size_t(i) * a.n + j0 + j] = from_f32<T>(c[size_t(i) * nb + j]);
    });
}

// OpenBLAS sgemm over f32 panels of W; F32 weights are used in place.
void gemm_blas(const Kernels &kf, const KernelArgs &a) {
    const bool f32_w = a.wtype == LLAISYS_DTYPE_F32;
    const bool f32_out = f32_w || dtype_is_quantized(a.wtype);
    const size_t panel = f32_w ? a.n : std::clamp(kPanelFloats / a.k, size_t(1), a.n);
    float *wbuf = f32_w ? nullptr : scratch(t_w, panel * a.k);
    float *cbuf = f32_out ? nullptr : scratch(t_c, a.m * panel);
    for (size_t j0 = 0; j0 < a.n; j0 += panel) {
        const size_t nb = std::min(panel, a.n - j0);
        const float *w = reinterpret_cast<const float *>(a.w) + j0 * a.k;
        if (!f32_w) {
            to_f32(kf, a.w + j0 * a.w_row_bytes, a.w_row_bytes, a.wtype, nb, a.k, wbuf, a.k,
                   a.threads);
            w = wbuf;
        }
        float *c = f32_out ? reinterpret_cast<float *>(a.out) + j0 : cbuf;
        const size_t ldc = f32_out ? a.n : nb;
        float beta = 0.0f;
        if (a.bias) { // sgemm accumulates onto C: start from the bias
            for (size_t i = 0; i < a.m; ++i) std::copy_n(a.bias + j0, nb, c + i * ldc);
            beta = 1.0f;
        }
        scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(a.m), int(nb), int(a.k),
                          1.0f, static_cast<const float *>(a.x), int(a.ldx), w, int(a.k), beta, c, int(ldc));
        if (!f32_out) store_panel(a, c, j0, nb);
    }
}

} // namespace

void linear(const LinearOperands &op) {
    const int threads = device::cpu::num_threads();
    const Kernels &kf = kernels();
    KernelArgs a{};
    a.m = op.m;
    a.n = op.n;
    a.k = op.k;
    a.w = op.w;
    a.w_row_bytes = dtype_bytes(op.wtype, op.k);
    a.wtype = op.wtype;
    a.out = op.out;
    a.threads = threads;
    const bool bf16_dot = op.xtype == LLAISYS_DTYPE_BF16 && kf.gemm_bf16_dot;
    if (op.xtype == LLAISYS_DTYPE_F32 || bf16_dot) {
        a.x = op.x;
        a.ldx = op.ldx;
    } else {
        float *x = scratch(t_x, op.m * op.k);
        to_f32(kf, op.x, op.ldx * dtype_size(op.xtype), op.xtype, op.m, op.k, x, op.k, threads);
        a.x = x;
        a.ldx = op.k;
    }
    if (op.bias && op.xtype != LLAISYS_DTYPE_F32) {
        float *b = scratch(t_bias, op.n);
        kf.rows_to_f32(op.bias, 0, op.xtype, 1, op.n, b, op.n);
        a.bias = b;
    } else {
        a.bias = reinterpret_cast<const float *>(op.bias);
    }
    if (bf16_dot)
        kf.gemm_bf16_dot(a);
    else if (op.m >= kBlasMinRows)
        gemm_blas(kf, a);
    else
        kf.gemm(a);
}

} // namespace llaisys::ops::cpu
