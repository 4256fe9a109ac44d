// Shared by the CUDA kernels: error checks, the stream they run on, element conversions
// and a dtype dispatch onto CUDA's element types.
#pragma once

#include "core/dtype.hpp"
#include "core/error.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace llaisys::device::nvidia {

inline void check_cuda(cudaError_t err, const char *what) {
    if (err != cudaSuccess) fail(LLAISYS_ERR_DEVICE, what, ": ", cudaGetErrorString(err));
}

// The one stream of the current device that every kernel, copy (the runtime table's
// memcpy_sync too) and cuBLAS call runs on: work is ordered without events, a freed block
// can be reused at once, and a decode step can be captured as a CUDA graph.
cudaStream_t stream();

inline void check_launch(const char *op) { check_cuda(cudaGetLastError(), op); }

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

} // namespace llaisys::device::nvidia
