#include "ops/argmax/cpu/argmax_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/argmax/nvidia/argmax_nvidia.hpp"
#endif
#include "ops/checks.hpp"
#include "ops/ops.hpp"

namespace llaisys::ops {

void argmax(tensor_t max_idx, tensor_t max_val, tensor_t vals) {
    check_not_null("argmax", {&max_idx, &max_val, &vals});
    check_same_device("argmax", {max_idx, max_val, vals});
    check_float("argmax", {vals});
    check_dtype("argmax", max_idx, LLAISYS_DTYPE_I64, "max_idx");
    check_same_dtype("argmax", {max_val, vals});
    CHECK_SHAPE(vals->ndim() == 1 || vals->ndim() == 2, "argmax: vals must be 1-D or 2-D, got ",
                shape_str(vals->shape()));
    const size_t rows = vals->ndim() == 2 ? vals->dim(0) : 1;
    const size_t n = vals->shape().back();
    CHECK_ARG(n > 0, "argmax: rows of ", shape_str(vals->shape()), " are empty");
    for (const tensor_t &t : {max_idx, max_val})
        CHECK_SHAPE(t->ndim() <= 1 && t->numel() == rows, "argmax: outputs must hold ", rows,
                    " value(s), got ", shape_str(t->shape()));
    check_contiguous("argmax", {max_idx, max_val});
    check_rows_contiguous("argmax", {vals});
    switch (vals->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::argmax(reinterpret_cast<int64_t *>(max_idx->data()), max_val->data(),
                           vals->data(), vals->dtype(), rows, n, row_stride(vals));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::argmax(reinterpret_cast<int64_t *>(max_idx->data()), max_val->data(),
                              vals->data(), vals->dtype(), rows, n, row_stride(vals));
#endif
    default:
        unsupported_device("argmax", vals);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysArgmax(llaisysTensor_t max_idx, llaisysTensor_t max_val,
                                  llaisysTensor_t vals) {
    return llaisys::api_guard([&] {
        CHECK_ARG(max_idx && max_val && vals, "argmax: null tensor");
        llaisys::ops::argmax(max_idx->tensor, max_val->tensor, vals->tensor);
    });
}
