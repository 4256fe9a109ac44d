// The SwiGLU of one element, shared by the swiglu kernel and the GEMV that fuses it.
#pragma once

namespace llaisys::ops::nvidia {

struct Swiglu {
    __device__ float operator()(float gate, float up) const {
        return up * gate / (1.0f + __expf(-gate));
    }
};

} // namespace llaisys::ops::nvidia
