/*
 * tensor.h - n-dimensional tensors on a device.
 *
 * A tensor is a view (shape, strides in elements, byte offset) over reference-counted
 * storage. Views share storage; the storage is freed with its last tensor.
 * Handles are owned by the caller and released with tensorDestroy.
 */
#ifndef LLAISYS_TENSOR_H
#define LLAISYS_TENSOR_H

#include "llaisys.h"

typedef struct LlaisysTensor *llaisysTensor_t;

#define LLAISYS_MAX_NDIM 8

/* New contiguous tensor, uninitialised. ndim in [0, LLAISYS_MAX_NDIM]; zero-sized dims
 * are allowed. */
__C LLAISYS_API llaisysStatus_t tensorCreate(const size_t *shape, size_t ndim,
                                             llaisysDataType_t dtype, llaisysDeviceType_t device,
                                             int device_id, llaisysTensor_t *out);
/* Releases the handle (NULL is a no-op). */
__C LLAISYS_API void tensorDestroy(llaisysTensor_t tensor);

__C LLAISYS_API void *tensorGetData(llaisysTensor_t tensor); /* first element */
__C LLAISYS_API size_t tensorGetNdim(llaisysTensor_t tensor);
/* Copies ndim values into shape / strides (strides in elements). */
__C LLAISYS_API void tensorGetShape(llaisysTensor_t tensor, size_t *shape);
__C LLAISYS_API void tensorGetStrides(llaisysTensor_t tensor, ptrdiff_t *strides);
__C LLAISYS_API llaisysDataType_t tensorGetDataType(llaisysTensor_t tensor);
__C LLAISYS_API llaisysDeviceType_t tensorGetDeviceType(llaisysTensor_t tensor);
__C LLAISYS_API int tensorGetDeviceId(llaisysTensor_t tensor);
__C LLAISYS_API int tensorIsContiguous(llaisysTensor_t tensor);

/* Copies numel elements from host memory into a contiguous tensor. */
__C LLAISYS_API llaisysStatus_t tensorLoad(llaisysTensor_t tensor, const void *host_data);
/* Copies a contiguous tensor's elements to host memory. */
__C LLAISYS_API llaisysStatus_t tensorRead(llaisysTensor_t tensor, void *host_data);

/* New view with another shape over the same elements; LLAISYS_ERR_SHAPE when the
 * element count differs or the strides cannot express it without a copy. */
__C LLAISYS_API llaisysStatus_t tensorView(llaisysTensor_t tensor, const size_t *shape, size_t ndim,
                                           llaisysTensor_t *out);
/* New view with dims reordered: out.shape[i] = in.shape[order[i]]. */
__C LLAISYS_API llaisysStatus_t tensorPermute(llaisysTensor_t tensor, const size_t *order,
                                              llaisysTensor_t *out);
/* New view of elements [start, end) along dim. */
__C LLAISYS_API llaisysStatus_t tensorSlice(llaisysTensor_t tensor, size_t dim, size_t start,
                                            size_t end, llaisysTensor_t *out);
/* New contiguous tensor with the same values (a copy unless already contiguous, in
 * which case a new handle sharing storage). */
__C LLAISYS_API llaisysStatus_t tensorContiguous(llaisysTensor_t tensor, llaisysTensor_t *out);
/* Prints shape, strides, dtype, device and values to stdout. */
__C LLAISYS_API llaisysStatus_t tensorDebug(llaisysTensor_t tensor);

#endif /* LLAISYS_TENSOR_H */
