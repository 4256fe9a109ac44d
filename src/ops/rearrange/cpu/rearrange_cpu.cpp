#include "ops/rearrange/cpu/rearrange_cpu.hpp"

#include <cstring>

namespace llaisys::ops::cpu {

void rearrange(std::byte *dst, const std::byte *src, const std::vector<size_t> &shape,
               const std::vector<ptrdiff_t> &dst_strides, const std::vector<ptrdiff_t> &src_strides,
               size_t elem_size) {
    const size_t ndim = shape.size();
    size_t total = 1;
    for (size_t d : shape) total *= d;
    if (total == 0) return;
    if (ndim == 0) {
        std::memcpy(dst, src, elem_size);
        return;
    }
    // The innermost dim is copied as one run when both sides are unit-stride there.
    const size_t inner = shape[ndim - 1];
    const bool run = dst_strides[ndim - 1] == 1 && src_strides[ndim - 1] == 1;
    const size_t outer = total / inner;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t o = 0; o < outer; ++o) {
        ptrdiff_t doff = 0, soff = 0;
        size_t rem = o;
        for (size_t d = ndim - 1; d-- > 0;) {
            size_t idx = rem % shape[d];
            rem /= shape[d];
            doff += ptrdiff_t(idx) * dst_strides[d];
            soff += ptrdiff_t(idx) * src_strides[d];
        }
        if (run) {
            std::memcpy(dst + doff * ptrdiff_t(elem_size), src + soff * ptrdiff_t(elem_size),
                        inner * elem_size);
        } else {
            for (size_t i = 0; i < inner; ++i)
                std::memcpy(
                    dst + (doff + ptrdiff_t(i) * dst_strides[ndim - 1]) * ptrdiff_t(elem_size),
                    src + (soff + ptrdiff_t(i) * src_strides[ndim - 1]) * ptrdiff_t(elem_size),
                    elem_size);
        }
    }
}

} // namespace llaisys::ops::cpu
