#include "ops/embedding/cpu/embedding_cpu.hpp"

#include <cstring>

namespace llaisys::ops::cpu {

void embedding(std::byte *out, const int64_t *index, const std::byte *weight, size_t n,
               size_t vocab, size_t row_bytes) {
    for (size_t i = 0; i < n; ++i)
        CHECK_ARG(index[i] >= 0 && uint64_t(index[i]) < vocab, "embedding: index[", i,
                  "] = ", index[i], " is outside [0, ", vocab, ")");
#pragma omp parallel for schedule(static) if (n * row_bytes > (1u << 20))
    for (size_t i = 0; i < n; ++i)
        std::memcpy(out + i * row_bytes, weight + size_t(index[i]) * row_bytes, row_bytes);
}

} // namespace llaisys::ops::cpu
