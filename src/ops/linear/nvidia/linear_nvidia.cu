#include "ops/linear/nvidia/linear_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"
#include "ops/swiglu/nvidia/swiglu_nvidia.cuh"

#include <cublas_v2.h>

#include <mutex>
#include <type_traits>
#include <vector>

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

void check_cublas(cublasStatus_t status, const char *what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail(LLAISYS_ERR_DEVICE, what, ": ", cublasGetStatusString(status));
}

// One handle per device, created on first use and kept for the process.
cublasHandle_t handle() {
    static std::mutex mutex;
    static auto *handles = new std::vector<cublasHandle_t>();
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mutex);
    if (size_t(device) >= handles->size()) handles->resize(size_t(device) + 1, nullptr);
    cublasHandle_t &h = (*handles)[size_t(device)];
    if (!h) { // a workspace of its own, so a captured graph never has cuBLAS allocate
        constexpr size_t kWorkspace = size_t(32) << 20;
        void *workspace = nullptr;
        check_cuda(cudaMalloc(&workspace, kWorkspace), "cudaMalloc (cuBLAS workspace)");
        check_cublas(cublasCreate(&h), "cublasCreate");
        check_cublas(cublasSetStream(h, stream()), "cublasSetStream");
        check_cublas(cublasSetWorkspace(h, workspace, kWorkspace), "cublasSetWorkspace");
    }
    return h;
}

// out rows = bias, before the GEMM adds x . W^T onto them (beta = 1).
template <typename T> __global__ void fill_bias_kernel(T *out, const T *bias, size_t m, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < m * n;
         i += size_t(gridDim.x) * blockDim.x)
        out[i] = bias[i % n];
}

// Decode-sized products (m <= kGemvRows rows of x) read W once at full bandwidth, where
// cuBLAS's GEMM tiles leave much of it unused: 1, 2, 4 or 8 warps per output column (more
// for narrow W, so every SM has loads in flight, and for long columns), each streaming its
// share of the column's W row in rounds of kGemvLoads 16-byte loads per lane, and dotting
// every x row against it in f32; the warps' sums meet in shared memory and the bias is
// added on the way out.
// Products of one x (a layer's q/k/v, its gate/up) share a launch: their columns are
// numbered one after another, or, for a fused SwiGLU, interleaved (gate column c, then up
// column c, in one block) so that the block writes swiglu(gate, up) alone.
// On the H200 one round of loads beat two double-buffered rounds (gate/up 16.4 vs 17.7 us,
// down 10.8 vs 12.1, lm_head 105 vs 114 us: scripts/bench_gemv_variants.cu), and rounds of
// 6 loads, which leave a one-row kernel at 48 registers (5 blocks an SM instead of 4),
// beat rounds of 8: decode 693 against 683 tok/s single stream, 2811 against 2746 at 8
// sequences. Spilling lost (635-642 tok/s): 8 loads held to 48 registers, or 6 loads held
// to 40 (6 blocks an SM). The bound applies to the one-row kernel only: more rows need
// more accumulators.
constexpr int kGemvRows = 8;
constexpr int kGemvWarps = 8;
constexpr int kGemvLoads = 6;
constexpr int kGemvMinBlocksOneRow = 5; // resident blocks an SM asked of the m = 1 kernel
// Warps a product should have at least: 12 per SM of an H100/H200 (132 SMs).
constexpr int kGemvMinWarps = 132 * 12;

struct GemvProducts {
    void *out[cpu::kMaxSharedInput];
    const void *w[cpu::kMaxSharedInput];
    const void *bias[cpu::kMaxSharedInput];
    int end[cpu::kMaxSharedInput]; // one past each product's last column, counted across all
    int count;
    void *swiglu_out; // non-null: products 0 and 1 are gate and up, out = swiglu(gate, up)
};

// 16 bytes of bf16 or f16 as 8 floats (T only picks the element type).
template <typename T> __device__ __forceinline__ void unpack(const uint4 &v, float (&f)[8], T) {
    using Pair = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    const auto *p = reinterpret_cast<const Pair *>(&v);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 t = to_float2(p[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ __forceinline__ void unpack(const uint4 &v, float (&f)[4], float) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
}

// a[j] by selects: a dynamic index into kernel parameters would copy them to local memory.
template <typename P> __device__ __forceinline__ P pick(const P (&a)[cpu::kMaxSharedInput], int j) {
    P v = a[0];
#pragma unroll
    for (int i = 1; i < int(cpu::kMaxSharedInput); ++i) v = i == j ? a[i] : v;
    return v;
}

template <typename T, int M>
__global__ void __launch_bounds__(kGemvWarps * 32, M == 1 ? kGemvMinBlocksOneRow : 1)
    gemv_kernel(GemvProducts p, const T *x, size_t ldx, int k, int slices, bool weights_first) {
    constexpr int V = 16 / sizeof(T);
    __shared__ float partial[kGemvWarps][M];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col = blockIdx.x * (kGemvWarps / slices) + warp / slices, slice = warp % slices;
    int j = 0, c = 0, n = 0; // the product of this warp's column, the column within it, its n
    if (p.swiglu_out) {
        j = col & 1;
        c = col >> 1;
        n = p.end[0];
    } else {
        int first = 0;
#pragma unroll
        for (int i = 0; i + 1 < int(cpu::kMaxSharedInput); ++i)
            if (i + 1 < p.count && col >= p.end[i]) j = i + 1, first = p.end[i];
        n = pick(p.end, j) - first;
        c = col - first;
    }
    const bool active = col < pick(p.end, p.count - 1);
    float acc[M];
#pragma unroll
    for (int r = 0; r < M; ++r) acc[r] = 0.0f;
    const T *wr = static_cast<const T *>(pick(p.w, j)) + size_t(c) * k;
    const int step = 32 * V * slices, round = kGemvLoads * step;
    int base = (slice * 32 + lane) * V;
    uint4 wv[kGemvLoads];
    auto load_round = [&](int at) {
#pragma unroll
        for (int u = 0; u < kGemvLoads; ++u)
            if (active && at + u * step < k)
                wv[u] = __ldcs(reinterpret_cast<const uint4 *>(wr + at + u * step));
    };
    // Model weights do not depend on earlier kernels: their first round is issued before the
    // wait for them.
    if (!weights_first) wait_for_prior_grid();
    load_round(base);
    if (weights_first) wait_for_prior_grid();
    allow_dependents_early();
    while (active && base < k) {
#pragma unroll
        for (int u = 0; u < kGemvLoads; ++u) {
            const int e0 = base + u * step;
            if (e0 >= k) break;
            float wf[V], xf[V];
            unpack(wv[u], wf, T());
#pragma unroll
            for (int r = 0; r < M; ++r) {
                unpack(__ldg(reinterpret_cast<const uint4 *>(x + r * ldx + e0)), xf, T());
#pragma unroll
                for (int e = 0; e < V; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
            }
        }
        base += round;
        if (base < k) load_round(base);
    }
#pragma unroll
    for (int r = 0; r < M; ++r) acc[r] = warp_sum(acc[r]);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < M; ++r) partial[warp][r] = acc[r];
    __syncthreads();
    if (slice != 0 || lane >= M || !active) return;
    // A column's value: its warps' sums and its bias, rounded to T as a stored product is.
    auto column = [&](int w, int product, int cc) {
        const T *bias = static_cast<const T *>(pick(p.bias, product));
        float sum = bias ? to_float(bias[cc]) : 0.0f;
        for (int s = 0; s < slices; ++s) sum += partial[w + s][lane];
        return from_float<T>(sum);
    };
    if (!p.swiglu_out) {
        static_cast<T *>(pick(p.out, j))[size_t(lane) * n + c] = column(warp, j, c);
    } else if (j == 0) { // the up column is the next one, slices warps on
        const float gate = to_float(column(warp, 0, c)), up = to_float(column(warp + slices, 1, c));
        static_cast<T *>(p.swiglu_out)[size_t(lane) * n + c] = from_float<T>(Swiglu()(gate, up));
    }
}

template <typename T, int M = 1>
void launch_gemv(const cpu::LinearOperands *ops, size_t count, bool weights_first,
                 void *swiglu_out) {
    const cpu::LinearOperands &op = ops[0];
    if constexpr (M < kGemvRows) {
        if (int(op.m) > M) return launch_gemv<T, M + 1>(ops, count, weights_first, swiglu_out);
    }
    GemvProducts p{};
    size_t cols = 0;
    for (size_t i = 0; i < count; ++i) {
        p.out[i] = ops[i].out;
        p.w[i] = ops[i].w;
        p.bias[i] = ops[i].bias;
        cols += ops[i].n;
        p.end[i] = int(cols);
    }
    p.count = int(count);
    p.swiglu_out = swiglu_out;
    // A fused SwiGLU keeps a gate/up pair of columns in one block: two columns a block at
    // least.
    const int max_slices = swiglu_out ? kGemvWarps / 2 : kGemvWarps;
    // Warps a column, doubled while a warp's round of loads leaves part of its share for a
    // second round (which waits for the first), or while the product has too few warps to
    // keep every SM loading and a warp's lanes would still get two loads each. On the H200
    // this took the o product from 4.9 to 4.0 us and down from 13.0 to 10.8
    // (scripts/bench_gemv_variants.cu), single-stream decode from 633 to 661 tok/s.
    const size_t lane_elems = 16 / sizeof(T), warp_round = 32 * lane_elems * kGemvLoads;
    auto more_warps = [&](size_t slices) {
        const bool second_round = slices * warp_round < op.k;
        const bool few_warps =
            slices * cols < size_t(kGemvMinWarps) && op.k >= slices * 32 * 2 * lane_elems;
        return second_round || few_warps;
    };
    int slices = 1;
    while (slices < max_slices && more_warps(size_t(slices))) slices *= 2;
    const size_t cols_per_block = size_t(kGemvWarps / slices);
    launch_dependent("linear (gemv)", gemv_kernel<T, M>,
                     unsigned((cols + cols_per_block - 1) / cols_per_block), kGemvWarps * 32, 0, p,
                     reinterpret_cast<const T *>(op.x), op.ldx, int(op.k), slices, weights_first);
}

bool gemv_fits(const cpu::LinearOperands &op) {
    const size_t v = 16 / dtype_size(op.wtype);
    auto aligned = [](const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    return op.m <= size_t(kGemvRows) && op.k % v == 0 && (op.m == 1 || op.ldx % v == 0) &&
           aligned(op.x) && aligned(op.w) && op.n < (size_t(1) << 31);
}

cudaDataType_t cuda_type(llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return CUDA_R_32F;
    case LLAISYS_DTYPE_F16:
        return CUDA_R_16F;
    case LLAISYS_DTYPE_BF16:
        return CUDA_R_16BF;
    default:
        fail(LLAISYS_ERR_DTYPE, "linear: dtype ", dtype_name(dtype), " is not taken on the GPU");
    }
}

} // namespace

void linear(const cpu::LinearOperands &op, bool constant_weights) {
    const cudaDataType_t type = cuda_type(op.wtype);
    if (gemv_fits(op)) return nvidia::linear_shared_input(&op, 1, constant_weights);
    if (op.bias)
        dispatch_cuda_float(op.wtype, "linear", [&](auto tag) {
            using T = std::remove_pointer_t<decltype(tag)>;
            const unsigned grid = std::min(blocks_for(op.m * op.n, 256), 65535u);
            fill_bias_kernel<<<grid, 256, 0, stream()>>>(
                reinterpret_cast<T *>(op.out), reinterpret_cast<const T *>(op.bias), op.m, op.n);
            check_launch("linear bias");
        });
    const float alpha = 1.0f, beta = op.bias ? 1.0f : 0.0f;
    // Column-major view: out^T [n, m] = W [k, n]^T . x^T [k, m].
    check_cublas(cublasGemmEx(handle(), CUBLAS_OP_T, CUBLAS_OP_N, int(op.n), int(op.m), int(op.k),
                              &alpha, op.w, type, int(op.k), op.x, type, int(op.ldx), &beta, op.out,
                              type, int(op.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
}

void linear_shared_input(const cpu::LinearOperands *ops, size_t count, bool constant_weights) {
    size_t cols = 0;
    bool one_launch = true;
    for (size_t i = 0; i < count; ++i) {
        cuda_type(ops[i].wtype); // quantized weights are refused before gemv_fits sizes them
        one_launch = one_launch && gemv_fits(ops[i]) && ops[i].wtype == ops[0].wtype;
        cols += ops[i].n;
    }
    if (!one_launch || cols >= (size_t(1) << 31)) {
        for (size_t i = 0; i < count; ++i) nvidia::linear(ops[i], constant_weights);
        return;
    }
    dispatch_cuda_float(ops[0].wtype, "linear", [&](auto tag) {
        launch_gemv<std::remove_pointer_t<decltype(tag)>>(ops, count, constant_weights, nullptr);
    });
}

bool linear_swiglu(const cpu::LinearOperands *ops, std::byte *out, bool constant_weights) {
    for (size_t i = 0; i < 2; ++i) {
        cuda_type(ops[i].wtype); // quantized weights are refused before gemv_fits sizes them
        if (!gemv_fits(ops[i]) || ops[i].wtype != ops[0].wtype) return false; // n: check_swiglu
    }
    if (2 * ops[0].n >= (size_t(1) << 31)) return false;
    dispatch_cuda_float(ops[0].wtype, "linear", [&](auto tag) {
        launch_gemv<std::remove_pointer_t<decltype(tag)>>(ops, 2, constant_weights, out);
    });
    return true;
}

} // namespace llaisys::ops::nvidia
