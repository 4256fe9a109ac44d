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
        CHECK_DEVICE(t->device_type() == first->device_type() && t->device_id() == first->device_id(),
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
    for (const tensor_t &t : ts) CHECK_SHAPE(t->is_contiguous(), op, ": operand must be contiguous");
}

inline void check_ndim(const char *op, const tensor_t &t, size_t ndim, const char *what) {
    CHECK_SHAPE(t->ndim() == ndim, op, ": ", what, " must have ", ndim, " dims, got ",
                shape_str(t->shape()));
}

[[noreturn]] inline void unsupported_device(const char *op, const tensor_t &t) {
    fail(LLAISYS_ERR_DEVICE, op, ": not implemented for device type ", int(t->device_type()));
}

} // namespace llaisys::ops
