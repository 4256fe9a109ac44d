#include "ops/rms_norm/nvidia/rms_norm_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

// One block per row.
template <typename T>
__global__ void rms_norm_kernel(T *out, ptrdiff_t out_stride, const T *in, ptrdiff_t in_stride,
                                const T *weight, size_t d, float eps) {
    __shared__ float scratch[32];
    const T *x = in + ptrdiff_t(blockIdx.x) * in_stride;
    T *y = out + ptrdiff_t(blockIdx.x) * out_stride;
    float sum_sq = 0.0f;
    for (size_t i = threadIdx.x; i < d; i += blockDim.x) {
        const float v = to_float(x[i]);
        sum_sq += v * v;
    }
    sum_sq = block_reduce<false>(sum_sq, scratch);
    const float inv_rms = rsqrtf(sum_sq / float(d) + eps);
    for (size_t i = threadIdx.x; i < d; i += blockDim.x)
        y[i] = from_float<T>(to_float(x[i]) * inv_rms * to_float(weight[i]));
}

} // namespace

void rms_norm(std::byte *out, ptrdiff_t out_stride, const std::byte *in, ptrdiff_t in_stride,
              const std::byte *weight, llaisysDataType_t dtype, size_t rows, size_t d, float eps) {
    if (rows == 0) return;
    dispatch_cuda_float(dtype, "rms_norm", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        const unsigned threads = d >= 1024 ? 512 : d >= 256 ? 256 : 64;
        rms_norm_kernel<<<unsigned(rows), threads, 0, stream()>>>(
            reinterpret_cast<T *>(out), out_stride, reinterpret_cast<const T *>(in), in_stride,
            reinterpret_cast<const T *>(weight), d, eps);
    });
    check_launch("rms_norm");
}

} // namespace llaisys::ops::nvidia
