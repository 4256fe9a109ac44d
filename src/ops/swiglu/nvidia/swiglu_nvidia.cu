#include "ops/swiglu/nvidia/swiglu_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"
#include "ops/swiglu/nvidia/swiglu_nvidia.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

} // namespace

void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n) {
    if (n == 0) return;
    dispatch_cuda_float(dtype, "swiglu", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        map2("swiglu", reinterpret_cast<T *>(out), reinterpret_cast<const T *>(gate),
             reinterpret_cast<const T *>(up), n, Swiglu());
    });
}

} // namespace llaisys::ops::nvidia
