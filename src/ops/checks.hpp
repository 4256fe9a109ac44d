// Operand checks shared by the operators; each throws a llaisys::Error naming the op.
#pragma once

#include "tensor/tensor.hpp"

#include <initializer_list>

namespace llaisys::ops {

inline void check_not_null(const char *op, std::initializer_list<const tensor_t *> ts) {
    for (const tensor_t *t : ts) CHECK_ARG(t && *t, op, ": null tensor");
}

inline void check_same_device(const char *op, std::initializer_list<tensor_t> ts) {
    const tensor_t &first = *ts.begin();
    for (const tensor_t &t : ts)
        CHECK_DEVICE(t->device_type() == first->device_type() &&
                         t->device_id() == first->device_id(),
                     op, ": operands are on different devices");
}

inline void check_same_dtype(const char *op, std::initializer_list<tensor_t> ts) {
    const tensor_t &first = *ts.begin();
    for (const tensor_t &t : ts)
        CHECK_DTYPE(t->dtype() == first->dtype(), op, ": dtype mismatch (", dtype_name(t->dtype()),
                    " vs ", dtype_name(first->dtype()), ")");
}

inline void check_dtype(const char *op, const tensor_t &t, llaisysDataType_t dtype,
                        const char *what) {
    CHECK_DTYPE(t->dtype() == dtype, op, ": ", what, " must be ", dtype_name(dtype), ", got ",
                dtype_name(t->dtype()));
}

inline void check_contiguous(const char *op, std::initializer_list<tensor_t> ts) {
    for (const tensor_t &t : ts)
        CHECK_SHAPE(t->is_contiguous(), op, ": operand must be contiguous");
}

inline void check_ndim(const char *op, const tensor_t &t, size_t ndim, const char *what) {
    CHECK_SHAPE(t->ndim() == ndim, op, ": ", what, " must have ", ndim, " dims, got ",
                shape_str(t->shape()));
}

inline void check_float(const char *op, std::initializer_list<tensor_t> ts) {
    for (const tensor_t &t : ts)
        CHECK_DTYPE(dtype_is_float(t->dtype()), op, ": needs F32, F16 or BF16, got ",
                    dtype_name(t->dtype()));
}

// Rows at a fixed pitch: contiguous except possibly for the stride of dim 0.
inline void check_rows_contiguous(const char *op, std::initializer_list<tensor_t> ts) {
    for (const tensor_t &t : ts)
        CHECK_SHAPE(t->rows_contiguous(), op, ": rows of ", t->info(), " must be contiguous");
}

// Elements between consecutive dim-0 rows (the row pitch), valid for any rank >= 1.
inline ptrdiff_t row_stride(const tensor_t &t) {
    if (t->shape()[0] > 1) return t->strides()[0];
    return ptrdiff_t(t->numel()); // a single (or no) row: the pitch is never used to step
}

// Strided [n, heads, d] operands (rope, attention) need only a unit stride on the last dim.
inline void check_unit_last_stride(const char *op, std::initializer_list<tensor_t> ts) {
    for (const tensor_t &t : ts)
        CHECK_SHAPE(t->shape().back() <= 1 || t->strides().back() == 1, op, ": last dim of ",
                    t->info(), " must have unit stride");
}

[[noreturn]] inline void unsupported_device(const char *op, const tensor_t &t) {
    fail(LLAISYS_ERR_DEVICE, op, ": not implemented for device type ", int(t->device_type()));
}

} // namespace llaisys::ops
