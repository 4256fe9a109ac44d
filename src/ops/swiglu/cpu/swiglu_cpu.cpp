#include "ops/swiglu/cpu/swiglu_cpu.hpp"

#include "device/cpu/cpu_features.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace llaisys::ops::cpu {

namespace {

template <typename T> void swiglu_generic(T *out, const T *gate, const T *up, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const float g = to_f32(gate[i]);
        out[i] = from_f32<T>(to_f32(up[i]) * g / (1.0f + std::exp(-g)));
    }
}

template <typename T> using SwigluFn = void (*)(T *, const T *, const T *, size_t);

template <typename T> SwigluFn<T> swiglu_fn() {
    if (device::cpu::kernel_path() != device::cpu::KernelPath::Generic)
        return static_cast<SwigluFn<T>>(&swiglu_avx2::swiglu);
    return &swiglu_generic<T>;
}

} // namespace

void swiglu(std::byte *out, const std::byte *gate, const std::byte *up, llaisysDataType_t dtype,
            size_t n) {
    dispatch_float(dtype, "swiglu", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pg = reinterpret_cast<const T *>(gate);
        auto *pu = reinterpret_cast<const T *>(up);
        const SwigluFn<T> run = swiglu_fn<T>();
        constexpr size_t chunk = 8192;
        const size_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 4)
        for (size_t c = 0; c < chunks; ++c) {
            const size_t begin = c * chunk;
            run(po + begin, pg + begin, pu + begin, std::min(chunk, n - begin));
        }
    });
}

} // namespace llaisys::ops::cpu
