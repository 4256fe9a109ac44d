#include "ops/argmax/cpu/argmax_cpu.hpp"

#include <type_traits>

namespace llaisys::ops::cpu {

void argmax(int64_t *max_idx, std::byte *max_val, const std::byte *vals, llaisysDataType_t dtype,
            size_t rows, size_t n, ptrdiff_t row_stride) {
    dispatch_float(dtype, "argmax", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *out_val = reinterpret_cast<T *>(max_val);
        auto *in = reinterpret_cast<const T *>(vals);
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > 65536)
        for (size_t r = 0; r < rows; ++r) {
            const T *row = in + ptrdiff_t(r) * row_stride;
            size_t best = argmax_row(row, n);
            max_idx[r] = int64_t(best);
            out_val[r] = row[best];
        }
    });
}

} // namespace llaisys::ops::cpu
