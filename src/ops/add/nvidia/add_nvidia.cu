#include "ops/add/nvidia/add_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

template <typename T> __global__ void add_kernel(T *c, const T *a, const T *b, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x)
        c[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}

} // namespace

void add(std::byte *c, const std::byte *a, const std::byte *b, llaisysDataType_t dtype, size_t n) {
    if (n == 0) return;
    dispatch_cuda_float(dtype, "add", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        const unsigned grid = std::min(blocks_for(n, 256), 65535u);
        add_kernel<<<grid, 256, 0, stream()>>>(reinterpret_cast<T *>(c),
                                               reinterpret_cast<const T *>(a),
                                               reinterpret_cast<const T *>(b), n);
    });
    check_launch("add");
}

} // namespace llaisys::ops::nvidia
