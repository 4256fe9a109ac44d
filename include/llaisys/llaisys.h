/*
 * llaisys.h - common types, status codes and error reporting of the llaisys C API.
 *
 * Every function of the API returns a llaisysStatus_t (or a value whose meaning
 * on failure is documented). On failure the calling thread's last error message
 * (llaisysGetLastError) says what went wrong. No function aborts the process on
 * bad input.
 */
#ifndef LLAISYS_H
#define LLAISYS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define LLAISYS_API __declspec(dllexport)
#else
#define LLAISYS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define __C extern "C"
#else
#define __C
#endif

typedef enum llaisysDeviceType {
    LLAISYS_DEVICE_CPU = 0,
    LLAISYS_DEVICE_NVIDIA = 1,
    LLAISYS_DEVICE_TYPE_COUNT
} llaisysDeviceType_t;

/* Element types. Quantized types (Q*) are GGUF-compatible blocks and only valid
 * for weights (see ops.h / model.h); shape[-1] counts logical elements and must be a
 * multiple of the block size (32). */
typedef enum llaisysDataType {
    LLAISYS_DTYPE_INVALID = 0,
    LLAISYS_DTYPE_F32 = 1,
    LLAISYS_DTYPE_F16 = 2,
    LLAISYS_DTYPE_BF16 = 3,
    LLAISYS_DTYPE_I32 = 4,
    LLAISYS_DTYPE_I64 = 5,
    LLAISYS_DTYPE_I8 = 6,
    LLAISYS_DTYPE_U8 = 7,
    LLAISYS_DTYPE_Q8_0 = 8, /* 32 elems: f16 scale + 32 x int8 (34 bytes) */
    LLAISYS_DTYPE_Q4_0 = 9, /* 32 elems: f16 scale + 16 bytes of nibbles (18 bytes) */
    LLAISYS_DTYPE_Q4_1 = 10 /* 32 elems: f16 scale, f16 min + 16 bytes (20 bytes) */
} llaisysDataType_t;

typedef enum llaisysStatus {
    LLAISYS_OK = 0,
    LLAISYS_ERR_INVALID_ARGUMENT = 1, /* null handle, out-of-range value, empty input */
    LLAISYS_ERR_SHAPE = 2,            /* shapes or strides do not fit the operation */
    LLAISYS_ERR_DTYPE = 3,            /* unsupported or mismatched data type */
    LLAISYS_ERR_DEVICE = 4,           /* wrong device, device not built or not present */
    LLAISYS_ERR_OUT_OF_MEMORY = 5,    /* an allocation failed */
    LLAISYS_ERR_NO_KV_SPACE = 6,      /* decode: the KV cache has no room; cache unchanged */
    LLAISYS_ERR_INVALID_BATCH = 7,    /* decode: the batch is malformed; cache unchanged */
    LLAISYS_ERR_UNSUPPORTED = 8,      /* a valid request this build cannot serve */
    LLAISYS_ERR_INTERNAL = 9          /* anything else; the message says what */
} llaisysStatus_t;

/* Message of the last failed call on this thread ("" if none). Valid until the next
 * failing call on the same thread. */
__C LLAISYS_API const char *llaisysGetLastError(void);

/* Size in bytes of one element (or of one block for quantized types). */
__C LLAISYS_API size_t llaisysDataTypeSize(llaisysDataType_t dtype);

/* Number of logical elements per storage unit: 1, or 32 for quantized types. */
__C LLAISYS_API size_t llaisysDataTypeBlockElems(llaisysDataType_t dtype);

#endif /* LLAISYS_H */
