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
    void (*gemm)(const KernelArgs *, size_t);
    void (*gemm_bf16_dot)(const KernelArgs *, size_t); // null where the CPU lacks a bf16 dot
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
// Quantized weights are widened to f32 panels for sgemm; below this many rows the tiles,
// which dequantize in registers, are faster (Q4_1 at 32 rows: 80-85 against 73 GFLOP/s on
// one core; at 64 rows: 80 against 86).
constexpr size_t kBlasMinRowsQuantized = 64;
// Columns of W per sgemm call: a multiple of sgemm's 16-wide micro-tile, small enough that
// a widened panel of a non-f32 W (and its rows of C) stays in L2.
constexpr size_t kBlasPanelCols = 64;
constexpr size_t kParallelMinElems = size_t(1) << 16;

// Grow-only per-thread scratch, so calls in steady state allocate nothing.
thread_local std::vector<float> t_x, t_bias, t_w, t_c;

float *scratch(std::vector<float> &buf, size_t n) {
    if (buf.size() < n) buf.resize(n);
    return buf.data();
}

void to_f32(const Kernels &kf, const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype,
            size_t rows, size_t k, float *dst, size_t ld, int threads) {
    const bool parallel = threads > 1 && rows > 1 && rows * k >= kParallelMinElems;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (ptrdiff_t r = 0; r < ptrdiff_t(rows); ++r)
        kf.rows_to_f32(src + size_t(r) * src_row_bytes, src_row_bytes, dtype, 1, k,
                       dst + size_t(r) * ld, ld);
}

// sgemm over column panels of W, the panels (of all count products of one input) shared out
// dynamically among our OpenMP threads, each calling a single-threaded sgemm: no BLAS thread
// pool spins beside OpenMP's (on a busy machine that halved the cores left to us), a thread
// the OS preempts holds up no fixed share of the work, and a narrow product (a k or v
// projection: a few panels) runs beside the others instead of on a few threads alone. Non-f32
// W is widened panel by panel into per-thread scratch; F16/BF16 outputs go through an f32
// panel of C.
void gemm_blas(const Kernels &kf, const KernelArgs *as, size_t count) {
    size_t first_panel[kMaxSharedInput + 1] = {};
    for (size_t q = 0; q < count; ++q)
        first_panel[q + 1] = first_panel[q] + (as[q].n + kBlasPanelCols - 1) / kBlasPanelCols;
    const bool f32_w = as[0].wtype == LLAISYS_DTYPE_F32;
    const bool f32_out = f32_w || dtype_is_quantized(as[0].wtype);
#pragma omp parallel for schedule(dynamic, 1) num_threads(as[0].threads) if (as[0].threads > 1)
    for (ptrdiff_t p = 0; p < ptrdiff_t(first_panel[count]); ++p) {
        size_t q = 0;
        while (size_t(p) >= first_panel[q + 1]) ++q;
        const KernelArgs &a = as[q];
        const size_t j0 = (size_t(p) - first_panel[q]) * kBlasPanelCols;
        const size_t nb = std::min(kBlasPanelCols, a.n - j0);
        const float *w = reinterpret_cast<const float *>(a.w) + j0 * a.k;
        if (!f32_w) {
            float *wbuf = scratch(t_w, kBlasPanelCols * a.k);
            kf.rows_to_f32(a.w + j0 * a.w_row_bytes, a.w_row_bytes, a.wtype, nb, a.k, wbuf, a.k);
            w = wbuf;
        }
        float *c =
            f32_out ? reinterpret_cast<float *>(a.out) + j0 : scratch(t_c, a.m * kBlasPanelCols);
        const size_t ldc = f32_out ? a.n : nb;
        float beta = 0.0f;
        if (a.bias) { // sgemm accumulates onto C: start from the bias
            for (size_t i = 0; i < a.m; ++i) std::copy_n(a.bias + j0, nb, c + i * ldc);
            beta = 1.0f;
        }
        scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(a.m), int(nb), int(a.k),
                          1.0f, static_cast<const float *>(a.x), int(a.ldx), w, int(a.k), beta, c,
                          int(ldc));
        if (!f32_out)
            dispatch_float(a.wtype, "linear", [&](auto tag) {
                using T = std::remove_pointer_t<decltype(tag)>;
                T *out = reinterpret_cast<T *>(a.out);
                for (size_t i = 0; i < a.m; ++i)
                    for (size_t j = 0; j < nb; ++j)
                        out[i * a.n + j0 + j] = from_f32<T>(c[i * nb + j]);
            });
    }
}

} // namespace

void linear_shared_input(const LinearOperands *ops, size_t count) {
    CHECK_ARG(count >= 1 && count <= kMaxSharedInput, "linear: 1 to ", kMaxSharedInput,
              " products of one input, got ", count);
    const LinearOperands &op = ops[0];
    for (size_t i = 1; i < count; ++i)
        if (ops[i].wtype != op.wtype) { // one kernel format per pass: one product at a time
            for (size_t p = 0; p < count; ++p) linear_shared_input(ops + p, 1);
            return;
        }
    const int threads = device::cpu::num_threads();
    const Kernels &kf = kernels();
    const bool bf16_dot = op.xtype == LLAISYS_DTYPE_BF16 && kf.gemm_bf16_dot;
    const void *x = op.x;
    size_t ldx = op.ldx;
    if (op.xtype != LLAISYS_DTYPE_F32 && !bf16_dot) {
        float *xf = scratch(t_x, op.m * op.k);
        to_f32(kf, op.x, op.ldx * dtype_size(op.xtype), op.xtype, op.m, op.k, xf, op.k, threads);
        x = xf;
        ldx = op.k;
    }
    size_t bias_floats = 0; // f32 copies of non-f32 biases
    for (size_t p = 0; p < count; ++p)
        if (ops[p].bias && op.xtype != LLAISYS_DTYPE_F32) bias_floats += ops[p].n;
    float *bias_f32 = bias_floats ? scratch(t_bias, bias_floats) : nullptr;
    KernelArgs args[kMaxSharedInput];
    for (size_t p = 0; p < count; ++p) {
        KernelArgs &a = args[p];
        a = KernelArgs{};
        a.x = x;
        a.ldx = ldx;
        a.m = op.m;
        a.n = ops[p].n;
        a.k = op.k;
        a.w = ops[p].w;
        a.w_row_bytes = dtype_bytes(op.wtype, op.k);
        a.wtype = op.wtype;
        a.out = ops[p].out;
        a.threads = threads;
        a.bias = reinterpret_cast<const float *>(ops[p].bias);
        if (ops[p].bias && bias_f32) {
            kf.rows_to_f32(ops[p].bias, 0, op.xtype, 1, a.n, bias_f32, a.n);
            a.bias = bias_f32;
            bias_f32 += a.n;
        }
    }
    if (bf16_dot) {
        kf.gemm_bf16_dot(args, count);
    } else if (op.m >= (dtype_is_quantized(op.wtype) ? kBlasMinRowsQuantized : kBlasMinRows)) {
        gemm_blas(kf, args, count);
    } else {
        kf.gemm(args, count);
    }
}

} // namespace llaisys::ops::cpu
