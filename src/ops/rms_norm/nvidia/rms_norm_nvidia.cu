#include "ops/rms_norm/nvidia/rms_norm_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

template <typename T, int V> struct alignas(sizeof(T) * V) Pack {
    T e[V];
};

// One block per row, in packs of V elements (16 bytes when every base and pitch allows it).
// A thread loads its first pack of the weight with its first pack of the row (a constant
// weight even before the wait for the kernel before) and keeps that pack of the row in
// registers for the output, so a row of at most blockDim.x packs (a decoder's hidden size)
// costs one round trip to memory, not three (the row; then, after the reduction, the weight
// and the row again). Further packs are read again: with a residual, the same thread wrote
// the row's sum back to in.
template <typename T, int V, bool Residual>
__global__ void rms_norm_kernel(T *out, ptrdiff_t out_stride, T *in, ptrdiff_t in_stride,
                                const T *residual, ptrdiff_t residual_stride, const T *weight,
                                size_t d, float eps, bool constant_weight, bool next_early) {
    using P = Pack<T, V>;
    __shared__ float scratch[32];
    const P *w = reinterpret_cast<const P *>(weight);
    const size_t packs = d / V, first = threadIdx.x;
    P w_first, x_first;
    if (next_early) allow_dependents_early();
    if (!constant_weight) wait_for_prior_grid();
    if (first < packs) w_first = w[first];
    if (constant_weight) wait_for_prior_grid();
    if (!next_early) allow_dependents_early();
    P *x = reinterpret_cast<P *>(in + ptrdiff_t(blockIdx.x) * in_stride);
    P *y = reinterpret_cast<P *>(out + ptrdiff_t(blockIdx.x) * out_stride);
    float sum_sq = 0.0f;
    for (size_t i = first; i < packs; i += blockDim.x) {
        P v = x[i];
        if constexpr (Residual) {
            const P r =
                reinterpret_cast<const P *>(residual + ptrdiff_t(blockIdx.x) * residual_stride)[i];
#pragma unroll
            for (int e = 0; e < V; ++e) v.e[e] = from_float<T>(to_float(v.e[e]) + to_float(r.e[e]));
            x[i] = v;
        }
        if (i == first) x_first = v;
#pragma unroll
        for (int e = 0; e < V; ++e) sum_sq += to_float(v.e[e]) * to_float(v.e[e]);
    }
    sum_sq = block_reduce<false>(sum_sq, scratch);
    const float inv_rms = rsqrtf(sum_sq / float(d) + eps);
    for (size_t i = first; i < packs; i += blockDim.x) {
        const P v = i == first ? x_first : x[i], g = i == first ? w_first : w[i];
        P o;
#pragma unroll
        for (int e = 0; e < V; ++e)
            o.e[e] = from_float<T>(to_float(v.e[e]) * inv_rms * to_float(g.e[e]));
        y[i] = o;
    }
}

template <typename T, int V>
void launch(std::byte *out, ptrdiff_t out_stride, std::byte *in, ptrdiff_t in_stride,
            const std::byte *residual, ptrdiff_t residual_stride, const std::byte *weight,
            size_t rows, size_t d, float eps, bool constant_weight, bool next_early) {
    const unsigned threads = unsigned(std::min<size_t>(512, (d / V + 31) / 32 * 32));
    auto args = [&](auto kernel) {
        launch_dependent("rms_norm", kernel, unsigned(rows), threads, 0, reinterpret_cast<T *>(out),
                         out_stride, reinterpret_cast<T *>(in), in_stride,
                         reinterpret_cast<const T *>(residual), residual_stride,
                         reinterpret_cast<const T *>(weight), d, eps, constant_weight, next_early);
    };
    if (residual)
        args(rms_norm_kernel<T, V, true>);
    else
        args(rms_norm_kernel<T, V, false>);
}

} // namespace

void rms_norm(std::byte *out, ptrdiff_t out_stride, std::byte *in, ptrdiff_t in_stride,
              const std::byte *residual, ptrdiff_t residual_stride, const std::byte *weight,
              llaisysDataType_t dtype, size_t rows, size_t d, float eps, bool constant_weight,
              bool next_early) {
    if (rows == 0) return;
    dispatch_cuda_float(dtype, "rms_norm", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        constexpr int V = 16 / sizeof(T);
        const uintptr_t bases = reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(in) |
                                reinterpret_cast<uintptr_t>(residual) |
                                reinterpret_cast<uintptr_t>(weight);
        const bool vec = bases % 16 == 0 && d % V == 0 && out_stride % V == 0 &&
                         in_stride % V == 0 && (!residual || residual_stride % V == 0);
        if (vec)
            launch<T, V>(out, out_stride, in, in_stride, residual, residual_stride, weight, rows, d,
                         eps, constant_weight, next_early);
        else
            launch<T, 1>(out, out_stride, in, in_stride, residual, residual_stride, weight, rows, d,
                         eps, constant_weight, next_early);
    });
}

} // namespace llaisys::ops::nvidia
