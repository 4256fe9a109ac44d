// Shared by the CUDA kernels: error checks, the stream they run on, element conversions
// and a dtype dispatch onto CUDA's element types.
#pragma once

#include "core/dtype.hpp"
#include "core/error.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace llaisys::device::nvidia {

inline void check_cuda(cudaError_t err, const char *what) {
    if (err != cudaSuccess) fail(LLAISYS_ERR_DEVICE, what, ": ", cudaGetErrorString(err));
}

// The one stream of the current device that every kernel, copy (the runtime table's
// memcpy_sync too) and cuBLAS call runs on: work is ordered without events, a freed block
// can be reused at once, and a decode step can be captured as a CUDA graph.
cudaStream_t stream();

inline void check_launch(const char *op) { check_cuda(cudaGetLastError(), op); }

// Programmatic dependent launch (Hopper): a kernel started by launch_dependent may have its
// blocks scheduled while the kernel before it in the stream is still running, which hides
// the launch gap between the many small kernels of a decode step. Such a kernel calls
// wait_for_prior_grid() before it reads anything earlier work wrote (what it reads
// regardless, such as weights, it may load before), then allow_dependents_early() so the
// kernel after it can be scheduled in turn. Both are no-ops before sm_90 and in kernels
// launched the usual way. A kernel starts once the one before it has triggered; one that
// triggers after its wait has seen its own predecessor finish, one that triggers first
// (rope_store_kv, a norm with next_early) has not. So a kernel may load before its wait
// what was written before the nearest kernel up the chain that triggers after its wait:
// weights always, and in a decode step its inputs and earlier steps' keys, whose writers
// finished long before.
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependents_early() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether kernel may be launched as a dependent on the current device: the device takes
// programmatic dependent launches (compute capability 9+) and the kernel's code came from
// sm_90+ PTX, so its wait_for_prior_grid() is there (a build whose newest PTX is older, run
// by the driver's JIT on a newer GPU, compiled the wait out).
bool dependent_launch_allowed(const void *kernel);

template <typename... Params, typename... Args>
void launch_dependent(const char *op, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      Args... args) {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream();
    config.attrs = &attr;
    config.numAttrs = dependent_launch_allowed(reinterpret_cast<const void *>(kernel)) ? 1 : 0;
    check_cuda(cudaLaunchKernelEx(&config, kernel, Params(args)...), op);
}

inline unsigned blocks_for(size_t n, unsigned threads) {
    return unsigned((n + threads - 1) / threads);
}

template <typename T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float(float v) { return v; }
template <> __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float(__nv_bfloat16 v) {
    return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float(float v) { return v; }
template <> __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float(float v) {
    return __float2bfloat16_rn(v);
}

// f(static_cast<T *>(nullptr)) with T the CUDA element type of a float dtype.
template <typename F> void dispatch_cuda_float(llaisysDataType_t dtype, const char *op, F &&f) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return f(static_cast<float *>(nullptr));
    case LLAISYS_DTYPE_F16:
        return f(static_cast<__half *>(nullptr));
    case LLAISYS_DTYPE_BF16:
        return f(static_cast<__nv_bfloat16 *>(nullptr));
    default:
        fail(LLAISYS_ERR_DTYPE, op, ": unsupported dtype ", dtype_name(dtype));
    }
}

// c[i] = f(a[i], b[i]) in f32 for n contiguous elements: 16-byte loads and stores for the
// whole vectors when Vec (every pointer 16-byte aligned), single elements for the rest.
template <bool Vec, typename T, typename F>
__global__ void map2_kernel(T *c, const T *a, const T *b, size_t n, F f) {
    wait_for_prior_grid();
    allow_dependents_early();
    constexpr size_t V = 16 / sizeof(T);
    const size_t first = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
    const size_t stride = size_t(gridDim.x) * blockDim.x;
    size_t done = 0;
    if constexpr (Vec) {
        for (size_t i = first; i < n / V; i += stride) {
            const uint4 ra = reinterpret_cast<const uint4 *>(a)[i];
            const uint4 rb = reinterpret_cast<const uint4 *>(b)[i];
            const T *ea = reinterpret_cast<const T *>(&ra), *eb = reinterpret_cast<const T *>(&rb);
            uint4 rc;
            T *ec = reinterpret_cast<T *>(&rc);
#pragma unroll
            for (size_t e = 0; e < V; ++e)
                ec[e] = from_float<T>(f(to_float(ea[e]), to_float(eb[e])));
            reinterpret_cast<uint4 *>(c)[i] = rc;
        }
        done = n / V * V;
    }
    for (size_t i = done + first; i < n; i += stride)
        c[i] = from_float<T>(f(to_float(a[i]), to_float(b[i])));
}

template <typename T, typename F>
void map2(const char *op, T *c, const T *a, const T *b, size_t n, F f) {
    if (n == 0) return;
    constexpr size_t V = 16 / sizeof(T);
    const uintptr_t bases = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) |
                            reinterpret_cast<uintptr_t>(c);
    const bool vec = bases % 16 == 0;
    const size_t work = vec ? n / V + n % V : n;
    const unsigned grid = std::min(blocks_for(work, 256), 65535u);
    if (vec)
        launch_dependent(op, map2_kernel<true, T, F>, grid, 256, 0, c, a, b, n, f);
    else
        launch_dependent(op, map2_kernel<false, T, F>, grid, 256, 0, c, a, b, n, f);
}

__device__ __forceinline__ float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
__device__ __forceinline__ float2 to_float2(__half2 v) { return __half22float2(v); }

// Block-wide sum / max over blockDim.x threads (a multiple of 32, at most 1024); every
// thread gets the result. scratch holds 32 floats; it may be reused after the call.
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <bool Max> __device__ float block_reduce(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = Max ? warp_max(v) : warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : (Max ? -INFINITY : 0.0f);
    return Max ? warp_max(v) : warp_sum(v);
}

// Up to kMaxMoves moves of rows over one index in one launch (a layer's K and V).
constexpr int kMaxMoves = 2;
template <typename W> struct RowMoveArgs {
    W *dst[kMaxMoves];
    const W *src[kMaxMoves];
    size_t words[kMaxMoves];
};

// dst[idx[r]] = src[r] (Scatter) or dst[r] = src[idx[r]] for n rows: a block per (row,
// move), 16-byte words when rows and bases allow it (KV cell moves, embedding lookups).
template <bool Scatter, typename W>
__global__ void move_rows_kernel(RowMoveArgs<W> m, const int64_t *idx) {
    wait_for_prior_grid();
    allow_dependents_early();
    const size_t r = blockIdx.x, cell = size_t(idx[r]);
    const bool second = blockIdx.y == 1;
    const size_t words = second ? m.words[1] : m.words[0];
    W *d = (second ? m.dst[1] : m.dst[0]) + (Scatter ? cell : r) * words;
    const W *s = (second ? m.src[1] : m.src[0]) + (Scatter ? r : cell) * words;
    for (size_t i = threadIdx.x; i < words; i += blockDim.x) d[i] = s[i];
}

template <bool Scatter>
void move_rows(std::byte *const *dst, const std::byte *const *src, const size_t *row_bytes,
               int moves, const int64_t *idx, size_t n, const char *op) {
    if (n == 0 || moves == 0) return;
    bool wide = true;
    for (int j = 0; j < moves; ++j)
        wide = wide && row_bytes[j] % 16 == 0 && reinterpret_cast<uintptr_t>(dst[j]) % 16 == 0 &&
               reinterpret_cast<uintptr_t>(src[j]) % 16 == 0;
    auto launch = [&](auto word) {
        using W = decltype(word);
        RowMoveArgs<W> m{};
        for (int j = 0; j < moves; ++j) {
            m.dst[j] = reinterpret_cast<W *>(dst[j]);
            m.src[j] = reinterpret_cast<const W *>(src[j]);
            m.words[j] = row_bytes[j] / sizeof(W);
        }
        launch_dependent(op, move_rows_kernel<Scatter, W>, dim3(unsigned(n), unsigned(moves)), 128,
                         0, m, idx);
    };
    if (wide)
        launch(int4());
    else
        launch((unsigned char)0);
}

} // namespace llaisys::device::nvidia
