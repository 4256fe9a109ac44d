#include "core/dtype.hpp"

namespace llaisys {

size_t dtype_size(llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
    case LLAISYS_DTYPE_I32:
        return 4;
    case LLAISYS_DTYPE_F16:
    case LLAISYS_DTYPE_BF16:
        return 2;
    case LLAISYS_DTYPE_I64:
        return 8;
    case LLAISYS_DTYPE_I8:
    case LLAISYS_DTYPE_U8:
        return 1;
    case LLAISYS_DTYPE_Q8_0:
        return 34;
    case LLAISYS_DTYPE_Q4_0:
        return 18;
    case LLAISYS_DTYPE_Q4_1:
        return 20;
    default:
        fail(LLAISYS_ERR_DTYPE, "invalid dtype ", int(dtype));
    }
}

bool dtype_is_quantized(llaisysDataType_t dtype) {
    return dtype == LLAISYS_DTYPE_Q8_0 || dtype == LLAISYS_DTYPE_Q4_0 ||
           dtype == LLAISYS_DTYPE_Q4_1;
}

bool dtype_is_float(llaisysDataType_t dtype) {
    return dtype == LLAISYS_DTYPE_F32 || dtype == LLAISYS_DTYPE_F16 || dtype == LLAISYS_DTYPE_BF16;
}

size_t dtype_block_elems(llaisysDataType_t dtype) { return dtype_is_quantized(dtype) ? 32 : 1; }

size_t dtype_bytes(llaisysDataType_t dtype, size_t n) {
    size_t block = dtype_block_elems(dtype);
    CHECK_SHAPE(n % block == 0, dtype_name(dtype), ": element count ", n,
                " is not a multiple of the block size ", block);
    return n / block * dtype_size(dtype);
}

const char *dtype_name(llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return "f32";
    case LLAISYS_DTYPE_F16:
        return "f16";
    case LLAISYS_DTYPE_BF16:
        return "bf16";
    case LLAISYS_DTYPE_I32:
        return "i32";
    case LLAISYS_DTYPE_I64:
        return "i64";
    case LLAISYS_DTYPE_I8:
        return "i8";
    case LLAISYS_DTYPE_U8:
        return "u8";
    case LLAISYS_DTYPE_Q8_0:
        return "q8_0";
    case LLAISYS_DTYPE_Q4_0:
        return "q4_0";
    case LLAISYS_DTYPE_Q4_1:
        return "q4_1";
    default:
        return "invalid";
    }
}

} // namespace llaisys

__C size_t llaisysDataTypeSize(llaisysDataType_t dtype) {
    try {
        return llaisys::dtype_size(dtype);
    } catch (const llaisys::Error &e) {
        llaisys::set_last_error(e.what());
        return 0;
    }
}

__C size_t llaisysDataTypeBlockElems(llaisysDataType_t dtype) {
    return llaisys::dtype_block_elems(dtype);
}
