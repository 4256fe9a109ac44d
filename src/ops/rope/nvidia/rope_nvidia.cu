#include "ops/rope/nvidia/rope_nvidia.hpp"

#include "ops/rope/nvidia/rope_nvidia.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

// One block per token; a thread per (head, pair).
template <typename T>
__global__ void rope_kernel(T *out, cpu::TokenHeadStrides os, const T *in, cpu::TokenHeadStrides is,
                            const int64_t *pos_ids, size_t heads, size_t d, double log_theta) {
    wait_for_prior_grid();
    allow_dependents_early();
    extern __shared__ float2 angles[];
    const size_t half = d / 2, t = blockIdx.x;
    rope_angles(angles, d, double(pos_ids[t]), log_theta);
    for (size_t j = threadIdx.x; j < heads * half; j += blockDim.x) {
        const size_t h = j / half;
        rotate_pair(out + ptrdiff_t(t) * os.token + ptrdiff_t(h) * os.head,
                    in + ptrdiff_t(t) * is.token + ptrdiff_t(h) * is.head, j % half, half,
                    angles[j % half]);
    }
}

} // namespace

void rope(std::byte *out, cpu::TokenHeadStrides out_strides, const std::byte *in,
          cpu::TokenHeadStrides in_strides, const int64_t *pos_ids, llaisysDataType_t dtype,
          size_t n, size_t heads, size_t d, float theta) {
    if (n == 0 || heads == 0) return;
    dispatch_cuda_float(dtype, "rope", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        const unsigned threads = unsigned(std::min<size_t>(heads * d / 2, 512));
        launch_dependent("rope", rope_kernel<T>, unsigned(n), std::max(threads, 32u),
                         rope_angles_bytes(rope_kernel<T>, d), reinterpret_cast<T *>(out),
                         out_strides, reinterpret_cast<const T *>(in), in_strides, pos_ids, heads,
                         d, std::log(double(theta)));
    });
}

} // namespace llaisys::ops::nvidia
