#include "ops/add/cpu/add_cpu.hpp"

#include <type_traits>

namespace llaisys::ops::cpu {

void add(std::byte *c, const std::byte *a, const std::byte *b, llaisysDataType_t dtype, size_t n) {
    dispatch_float(dtype, "add", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *pc = reinterpret_cast<T *>(c);
        auto *pa = reinterpret_cast<const T *>(a);
        auto *pb = reinterpret_cast<const T *>(b);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; ++i) pc[i] = from_f32<T>(to_f32(pa[i]) + to_f32(pb[i]));
    });
}

} // namespace llaisys::ops::cpu
