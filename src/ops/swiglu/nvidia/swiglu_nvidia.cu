#include "ops/swiglu/nvidia/swiglu_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

template <typename T> __global__ void swiglu_kernel(T *out, const T *gate, const T *up, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        const float g = to_float(gate[i]);
        out[i] = from_float<T>(to_float(up[i]) * g / (1.0f + __expf(-g)));
    }
}

} // namespace

void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n) {
    if (n == 0) return;
    dispatch_cuda_float(dtype, "swiglu", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        const unsigned grid = std::min(blocks_for(n, 256), 65535u);
        swiglu_kernel<<<grid, 256, 0, stream()>>>(reinterpret_cast<T *>(out),
                                                  reinterpret_cast<const T *>(gate),
                                                  reinterpret_cast<const T *>(up), n);
    });
    check_launch("swiglu");
}

} // namespace llaisys::ops::nvidia
