#include "models/weight_convert.hpp"

#include "core/dtype.hpp"
#include "device/cpu/cpu_features.hpp"

#include <type_traits>

namespace llaisys::models {

namespace {

constexpr size_t QK = 32; // elements per quantized block

struct BlockQ8_0 {
    fp16_t d;
    int8_t qs[QK];
};
struct BlockQ4_0 {
    fp16_t d;
    uint8_t qs[QK / 2];
};
struct BlockQ4_1 {
    fp16_t d, m;
    uint8_t qs[QK / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);

// Dequantizes one block of 32 elements (GGUF reference layout) into f32.
void dequantize(float *out, const std::byte *block, llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_Q8_0: {
        const auto *b = reinterpret_cast<const BlockQ8_0 *>(block);
        const float d = f16_to_f32(b->d);
        for (size_t j = 0; j < QK; ++j) out[j] = d * float(b->qs[j]);
        break;
    }
    case LLAISYS_DTYPE_Q4_0: {
        const auto *b = reinterpret_cast<const BlockQ4_0 *>(block);
        const float d = f16_to_f32(b->d);
        for (size_t j = 0; j < QK / 2; ++j) {
            out[j] = d * float(int(b->qs[j] & 0xf) - 8);
            out[j + QK / 2] = d * float(int(b->qs[j] >> 4) - 8);
        }
        break;
    }
    case LLAISYS_DTYPE_Q4_1: {
        const auto *b = reinterpret_cast<const BlockQ4_1 *>(block);
        const float d = f16_to_f32(b->d), m = f16_to_f32(b->m);
        for (size_t j = 0; j < QK / 2; ++j) {
            out[j] = d * float(b->qs[j] & 0xf) + m;
            out[j + QK / 2] = d * float(b->qs[j] >> 4) + m;
        }
        break;
    }
    default:
        fail(LLAISYS_ERR_DTYPE, "convert_weight: unsupported source dtype ", dtype_name(dtype));
    }
}

template <typename D>
void convert_to(D *dst, const void *src, llaisysDataType_t src_dtype, size_t n) {
    const int threads = device::cpu::num_threads();
    if (dtype_is_quantized(src_dtype)) {
        const auto *blocks = static_cast<const std::byte *>(src);
        const size_t block_bytes = dtype_size(src_dtype);
        const ptrdiff_t n_blocks = ptrdiff_t(n / QK);
#pragma omp parallel for num_threads(threads) schedule(static) if (n_blocks > 4096)
        for (ptrdiff_t b = 0; b < n_blocks; ++b) {
            float tmp[QK];
            dequantize(tmp, blocks + size_t(b) * block_bytes, src_dtype);
            for (size_t j = 0; j < QK; ++j) dst[size_t(b) * QK + j] = from_f32<D>(tmp[j]);
        }
        return;
    }
    dispatch_float(src_dtype, "convert_weight", [&](auto tag) {
        using S = std::remove_pointer_t<decltype(tag)>;
        const S *s = static_cast<const S *>(src);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
        for (ptrdiff_t i = 0; i < ptrdiff_t(n); ++i) dst[i] = from_f32<D>(to_f32(s[i]));
    });
}

} // namespace

void convert_weight(void *dst, llaisysDataType_t dst_dtype, const void *src,
                    llaisysDataType_t src_dtype, size_t n) {
    dispatch_float(dst_dtype, "convert_weight", [&](auto tag) {
        using D = std::remove_pointer_t<decltype(tag)>;
        convert_to(static_cast<D *>(dst), src, src_dtype, n);
    });
}

} // namespace llaisys::models
