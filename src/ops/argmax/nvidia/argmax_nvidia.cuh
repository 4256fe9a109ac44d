// Block-wide first-maximum search, shared by argmax and greedy sampling.
#pragma once

#include "device/nvidia/nvidia_common.cuh"

#include <cstdint>

namespace llaisys::ops::nvidia {

using namespace device::nvidia;

struct ArgBest {
    float val;
    int64_t idx;
};

__device__ __forceinline__ ArgBest better(ArgBest a, ArgBest b) {
    return (b.val > a.val || (b.val == a.val && b.idx < a.idx)) ? b : a;
}

// Over row[0, n) by all threads of the block (blockDim.x a multiple of 32); NaN counts as
// -inf, and a row of only NaN/-inf gives index 0. Every thread gets the result.
// A 16-byte aligned row is read 16 bytes a thread at a time (a vocabulary row of bf16 logits
// in 19 loads a thread, not 148), kArgmaxLoads of them in flight at once (3 round trips, not
// 19; a decode step's greedy sampler went from 9.9 to 8.7 us): each thread still meets its
// indices in increasing order.
constexpr int kArgmaxLoads = 8;

template <typename T> __device__ ArgBest block_argmax(const T *row, size_t n, ArgBest *scratch) {
    constexpr size_t V = 16 / sizeof(T);
    ArgBest best{-INFINITY, 0};
    size_t done = 0;
    if (reinterpret_cast<uintptr_t>(row) % 16 == 0) {
        const size_t packs = n / V;
        for (size_t c0 = threadIdx.x; c0 < packs; c0 += kArgmaxLoads * size_t(blockDim.x)) {
            uint4 raw[kArgmaxLoads];
#pragma unroll
            for (int b = 0; b < kArgmaxLoads; ++b) {
                const size_t c = c0 + b * size_t(blockDim.x);
                if (c < packs) raw[b] = __ldg(reinterpret_cast<const uint4 *>(row) + c);
            }
#pragma unroll
            for (int b = 0; b < kArgmaxLoads; ++b) {
                const size_t c = c0 + b * size_t(blockDim.x);
                if (c >= packs) break;
                const T *e = reinterpret_cast<const T *>(&raw[b]);
#pragma unroll
                for (size_t j = 0; j < V; ++j) {
                    const float v = to_float(e[j]);
                    if (v > best.val) best = {v, int64_t(c * V + j)};
                }
            }
        }
        done = n / V * V;
    }
    for (size_t i = done + threadIdx.x; i < n; i += blockDim.x) {
        const float v = to_float(row[i]);
        if (v > best.val) best = {v, int64_t(i)};
    }
    for (int o = 16; o > 0; o >>= 1) {
        ArgBest other{__shfl_xor_sync(0xffffffffu, best.val, o),
                      __shfl_xor_sync(0xffffffffu, best.idx, o)};
        best = better(best, other);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = best;
    __syncthreads();
    best = lane < int(blockDim.x >> 5) ? scratch[lane] : ArgBest{-INFINITY, 0};
    for (int o = 16; o > 0; o >>= 1) {
        ArgBest other{__shfl_xor_sync(0xffffffffu, best.val, o),
                      __shfl_xor_sync(0xffffffffu, best.idx, o)};
        best = better(best, other);
    }
    return best;
}

} // namespace llaisys::ops::nvidia
