#include "ops/swiglu/cpu/swiglu_cpu.hpp"

#include <cmath>
#include <type_traits>

namespace llaisys::ops::cpu {

void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n) {
    dispatch_float(dtype, "swiglu", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pg = reinterpret_cast<const T *>(gate);
        auto *pu = reinterpret_cast<const T *>(up);
#pragma omp parallel for schedule(static) if (n > 32768)
        for (size_t i = 0; i < n; ++i) {
            const float g = to_f32(pg[i]);
            po[i] = from_f32<T>(to_f32(pu[i]) * g / (1.0f + std::exp(-g)));
        }
    });
}

} // namespace llaisys::ops::cpu
