#include "ops/rope/cpu/rope_cpu.hpp"

#include <cmath>
#include <type_traits>
#include <vector>

namespace llaisys::ops::cpu {

void rope(std::byte *out, TokenHeadStrides out_strides, const std::byte *in,
          TokenHeadStrides in_strides, const int64_t *pos_ids, llaisysDataType_t dtype, size_t n,
          size_t heads, size_t d, float theta) {
    const size_t half = d / 2;
    std::vector<double> inv_freq(half);
    for (size_t i = 0; i < half; ++i)
        inv_freq[i] = std::pow(double(theta), -double(2 * i) / double(d));
    dispatch_float(dtype, "rope", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pi = reinterpret_cast<const T *>(in);
#pragma omp parallel if (n > 1 && n * heads * d > 16384)
        {
            // Angles in double: at positions near 1e5 an f32 product is off by milliradians.
            std::vector<float> cos_t(half), sin_t(half);
#pragma omp for schedule(static)
            for (size_t t = 0; t < n; ++t) {
                const double pos = double(pos_ids[t]);
                for (size_t i = 0; i < half; ++i) {
                    const double angle = pos * inv_freq[i];
                    cos_t[i] = float(std::cos(angle));
                    sin_t[i] = float(std::sin(angle));
                }
                for (size_t h = 0; h < heads; ++h) {
                    const T *x =
                        pi + ptrdiff_t(t) * in_strides.token + ptrdiff_t(h) * in_strides.head;
                    T *y = po + ptrdiff_t(t) * out_strides.token + ptrdiff_t(h) * out_strides.head;
                    for (size_t i = 0; i < half; ++i) {
                        // Both halves are read before either is written, so out may alias in.
                        const float a = to_f32(x[i]), b = to_f32(x[i + half]);
                        y[i] = from_f32<T>(a * cos_t[i] - b * sin_t[i]);
                        y[i + half] = from_f32<T>(b * cos_t[i] + a * sin_t[i]);
                    }
                }
            }
        }
    });
}

} // namespace llaisys::ops::cpu
