// Operand checks shared by the operators; each throws a llaisys::Error naming the op.
#pragma once

#include "tensor/tensor.hpp"

#include <cmath>
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

// rope's operands (the op and the decoder's fused K/V store): in/out [n, heads, d] with d
// even and a unit last stride, pos_ids I64 [n], theta positive.
inline void check_rope(const char *op, const tensor_t &out, const tensor_t &in,
                       const tensor_t &pos_ids, float theta) {
    check_not_null(op, {&out, &in, &pos_ids});
    check_same_device(op, {out, in, pos_ids});
    check_float(op, {in});
    check_same_dtype(op, {out, in});
    check_dtype(op, pos_ids, LLAISYS_DTYPE_I64, "pos_ids");
    check_ndim(op, in, 3, "in");
    check_ndim(op, pos_ids, 1, "pos_ids");
    CHECK_SHAPE(out->shape() == in->shape(), op, ": out ", shape_str(out->shape()), " and in ",
                shape_str(in->shape()), " differ");
    CHECK_SHAPE(pos_ids->dim(0) == in->dim(0), op, ": pos_ids ", shape_str(pos_ids->shape()),
                " does not match ", in->dim(0), " tokens");
    CHECK_SHAPE(in->dim(2) % 2 == 0, op, ": head dim ", in->dim(2), " must be even");
    CHECK_ARG(std::isfinite(theta) && theta > 0.0f, op, ": theta must be positive, got ", theta);
    check_unit_last_stride(op, {out, in});
    check_contiguous(op, {pos_ids});
}

[[noreturn]] inline void unsupported_device(const char *op, const tensor_t &t) {
    fail(LLAISYS_ERR_DEVICE, op, ": not implemented for device type ", int(t->device_type()));
}

} // namespace llaisys::ops
