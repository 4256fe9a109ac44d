// The rotation of one RoPE pair, shared by the rope op and the decoder's fused K/V store.
#pragma once

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

// cs[i] = (cos, sin) of pair i's angle at pos, pos * theta^(-2i/d), for i < d/2, by the
// whole block (which it syncs): a token's heads share their angles, and the double-precision
// exp and sincos of each, were they taken per head, would dominate a decode step's rope. The
// angle is taken in double, as on the CPU: at positions near 1e5 an f32 product is off by
// milliradians.
__device__ __forceinline__ void rope_angles(float2 *cs, size_t d, double pos, double log_theta) {
    for (size_t i = threadIdx.x; i < d / 2; i += blockDim.x) {
        double s, c;
        sincos(pos * exp(-double(2 * i) / double(d) * log_theta), &s, &c);
        cs[i] = make_float2(float(c), float(s));
    }
    __syncthreads();
}

// y's pair i (y[i], y[i + half]) = x's pair rotated by the angle whose (cos, sin) is cs.
// y may be x.
template <typename T>
__device__ __forceinline__ void rotate_pair(T *y, const T *x, size_t i, size_t half, float2 cs) {
    using device::nvidia::from_float, device::nvidia::to_float;
    const float a = to_float(x[i]), b = to_float(x[i + half]);
    y[i] = from_float<T>(a * cs.x - b * cs.y);
    y[i + half] = from_float<T>(b * cs.x + a * cs.y);
}

// Bytes of shared memory rope_angles needs for head dim d in kernel, which is allowed them
// when they pass the 48 KB a launch gets by default (head dims above 12288).
template <typename Kernel> size_t rope_angles_bytes(Kernel kernel, size_t d) {
    const size_t bytes = d / 2 * sizeof(float2);
    if (bytes > 48 * 1024)
        device::nvidia::check_cuda(
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
            "rope shared memory");
    return bytes;
}

} // namespace llaisys::ops::nvidia
