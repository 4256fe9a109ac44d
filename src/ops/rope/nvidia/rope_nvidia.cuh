// The rotation of one RoPE pair, shared by the rope op and the decoder's fused K/V store.
#pragma once

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

// y's pair i (y[i], y[i + d/2]) = x's pair rotated by pos * theta^(-2i/d). The angle is taken
// in double, as on the CPU: at positions near 1e5 an f32 product is off by milliradians. y may
// be x.
template <typename T>
__device__ __forceinline__ void rotate_pair(T *y, const T *x, size_t i, size_t d, double pos,
                                            double log_theta) {
    using device::nvidia::from_float, device::nvidia::to_float;
    const size_t half = d / 2;
    const double angle = pos * exp(-double(2 * i) / double(d) * log_theta);
    double s, c;
    sincos(angle, &s, &c);
    const float cf = float(c), sf = float(s);
    const float a = to_float(x[i]), b = to_float(x[i + half]);
    y[i] = from_float<T>(a * cf - b * sf);
    y[i + half] = from_float<T>(b * cf + a * sf);
}

} // namespace llaisys::ops::nvidia
