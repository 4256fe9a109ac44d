#include "ops/rms_norm/cpu/rms_norm_cpu.hpp"

#include <cmath>
#include <type_traits>

namespace llaisys::ops::cpu {

void rms_norm(std::byte *out, ptrdiff_t out_stride, std::byte *in, ptrdiff_t in_stride,
              const std::byte *residual, ptrdiff_t residual_stride, const std::byte *weight,
              llaisysDataType_t dtype, size_t rows, size_t d, float eps) {
    dispatch_float(dtype, "rms_norm", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pi = reinterpret_cast<T *>(in);
        auto *pr = reinterpret_cast<const T *>(residual);
        auto *pw = reinterpret_cast<const T *>(weight);
#pragma omp parallel for schedule(static) if (rows > 1 && rows * d > 32768)
        for (size_t r = 0; r < rows; ++r) {
            T *x = pi + ptrdiff_t(r) * in_stride;
            T *y = po + ptrdiff_t(r) * out_stride;
            if (pr) {
                const T *res = pr + ptrdiff_t(r) * residual_stride;
#pragma omp simd
                for (size_t i = 0; i < d; ++i) x[i] = from_f32<T>(to_f32(x[i]) + to_f32(res[i]));
            }
            float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
            for (size_t i = 0; i < d; ++i) {
                float v = to_f32(x[i]);
                sum_sq += v * v;
            }
            const float inv_rms = 1.0f / std::sqrt(sum_sq / float(d) + eps);
            for (size_t i = 0; i < d; ++i)
                y[i] = from_f32<T>(to_f32(x[i]) * inv_rms * to_f32(pw[i]));
        }
    });
}

} // namespace llaisys::ops::cpu
