#include "ops/argmax/nvidia/argmax_nvidia.hpp"

#include "ops/argmax/nvidia/argmax_nvidia.cuh"

namespace llaisys::ops::nvidia {

namespace {

template <typename T>
__global__ void argmax_kernel(int64_t *max_idx, T *max_val, const T *vals, size_t n,
                              ptrdiff_t row_stride) {
    __shared__ ArgBest scratch[32];
    const T *row = vals + ptrdiff_t(blockIdx.x) * row_stride;
    const ArgBest best = block_argmax(row, n, scratch);
    if (threadIdx.x == 0) {
        max_idx[blockIdx.x] = best.idx;
        max_val[blockIdx.x] = row[best.idx];
    }
}

} // namespace

void argmax(int64_t *max_idx, std::byte *max_val, const std::byte *vals, llaisysDataType_t dtype,
            size_t rows, size_t n, ptrdiff_t row_stride) {
    if (rows == 0) return;
    dispatch_cuda_float(dtype, "argmax", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        argmax_kernel<<<unsigned(rows), 1024, 0, stream()>>>(
            max_idx, reinterpret_cast<T *>(max_val), reinterpret_cast<const T *>(vals), n,
            row_stride);
    });
    check_launch("argmax");
}

} // namespace llaisys::ops::nvidia
