// Element types: sizes, names and scalar f16/bf16 <-> f32 conversion.
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <cstring>

namespace llaisys {

struct fp16_t {
    uint16_t bits;
};
struct bf16_t {
    uint16_t bits;
};

size_t dtype_size(llaisysDataType_t dtype);        // bytes per element (per block if quantized)
size_t dtype_block_elems(llaisysDataType_t dtype); // 1, or 32 for quantized types
bool dtype_is_quantized(llaisysDataType_t dtype);
bool dtype_is_float(llaisysDataType_t dtype); // F32, F16, BF16
const char *dtype_name(llaisysDataType_t dtype);
// Bytes needed for n logical elements (n a multiple of the block size when quantized).
size_t dtype_bytes(llaisysDataType_t dtype, size_t n);

inline float bf16_to_f32(bf16_t v) {
    uint32_t u = uint32_t(v.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline bf16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{uint16_t((u >> 16) | 0x40)}; // NaN
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even
    return bf16_t{uint16_t(u >> 16)};
}

inline float f16_to_f32(fp16_t v) {
    uint32_t h = v.bits;
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { // subnormal: renormalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ffu;
            u = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline fp16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return fp16_t{uint16_t(sign | 0x7e00u)};  // NaN
    if (abs >= 0x477ff000u) return fp16_t{uint16_t(sign | 0x7c00u)}; // overflow -> inf
    if (abs < 0x38800000u) { // subnormal or zero: round via float addition
        float a;
        std::memcpy(&a, &abs, 4);
        a += 0.5f; // 2^-1 aligns the f16 subnormal ulp (2^-24) at the float's ulp
        uint32_t r;
        std::memcpy(&r, &a, 4);
        return fp16_t{uint16_t(sign | (r - 0x3f000000u))};
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xc8000fffu + mant_odd; // rebias exponent (-112 << 23) and round to nearest even
    return fp16_t{uint16_t(sign | (abs >> 13))};
}

template <typename T> inline float to_f32(T v);
template <> inline float to_f32<float>(float v) { return v; }
template <> inline float to_f32<fp16_t>(fp16_t v) { return f16_to_f32(v); }
template <> inline float to_f32<bf16_t>(bf16_t v) { return bf16_to_f32(v); }

template <typename T> inline T from_f32(float v);
template <> inline float from_f32<float>(float v) { return v; }
template <> inline fp16_t from_f32<fp16_t>(float v) { return f32_to_f16(v); }
template <> inline bf16_t from_f32<bf16_t>(float v) { return f32_to_bf16(v); }

// Calls f with a null pointer of the C++ type of a floating dtype, e.g.
//   dispatch_float(dt, "rms_norm", [&](auto tag) { using T = std::remove_pointer_t<decltype(tag)>;
//   ... });
template <typename F> void dispatch_float(llaisysDataType_t dtype, const char *op, F &&f) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        f(static_cast<float *>(nullptr));
        break;
    case LLAISYS_DTYPE_F16:
        f(static_cast<fp16_t *>(nullptr));
        break;
    case LLAISYS_DTYPE_BF16:
        f(static_cast<bf16_t *>(nullptr));
        break;
    default:
        fail(LLAISYS_ERR_DTYPE, op, ": unsupported dtype ", dtype_name(dtype));
    }
}

} // namespace llaisys
