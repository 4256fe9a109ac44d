#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/rms_norm/cpu/rms_norm_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/rms_norm/nvidia/rms_norm_nvidia.hpp"
#endif

#include <cmath>

namespace llaisys::ops {

namespace {

// out = rms_norm(in + residual) when residual is given, the sum kept in in.
void norm_rows(const char *op, tensor_t out, tensor_t in, tensor_t residual, tensor_t weight,
               float eps, bool constant_weight, bool next_early) {
    check_not_null(op, {&out, &in, &weight});
    check_same_device(op, {out, in, weight});
    check_float(op, {in});
    check_same_dtype(op, {out, in, weight});
    check_ndim(op, in, 2, "in");
    check_ndim(op, weight, 1, "weight");
    CHECK_SHAPE(out->shape() == in->shape() && weight->dim(0) == in->dim(1), op, ": out ",
                shape_str(out->shape()), ", in ", shape_str(in->shape()), " and weight ",
                shape_str(weight->shape()), " do not fit");
    if (residual) {
        check_same_device(op, {in, residual});
        check_same_dtype(op, {in, residual});
        CHECK_SHAPE(residual->shape() == in->shape(), op, ": residual ",
                    shape_str(residual->shape()), " does not match ", shape_str(in->shape()));
        check_rows_contiguous(op, {residual});
    }
    CHECK_ARG(in->dim(1) > 0, op, ": rows are empty");
    CHECK_ARG(std::isfinite(eps) && eps >= 0.0f, op, ": eps must be finite and >= 0, got ", eps);
    check_rows_contiguous(op, {out, in});
    check_contiguous(op, {weight});
    const std::byte *res = residual ? residual->data() : nullptr;
    const ptrdiff_t res_stride = residual ? row_stride(residual) : 0;
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::rms_norm(out->data(), row_stride(out), in->data(), row_stride(in), res,
                             res_stride, weight->data(), in->dtype(), in->dim(0), in->dim(1), eps);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::rms_norm(out->data(), row_stride(out), in->data(), row_stride(in), res,
                                res_stride, weight->data(), in->dtype(), in->dim(0), in->dim(1),
                                eps, constant_weight, next_early);
#endif
    default:
        unsupported_device(op, out);
    }
}

} // namespace

void rms_norm(tensor_t out, tensor_t in, tensor_t weight, float eps, bool constant_weight) {
    norm_rows("rms_norm", out, in, nullptr, weight, eps, constant_weight, false);
}

void add_rms_norm(tensor_t out, tensor_t x, tensor_t residual, tensor_t weight, float eps,
                  bool constant_weight, bool next_early) {
    CHECK_ARG(residual, "add_rms_norm: null tensor");
    norm_rows("add_rms_norm", out, x, residual, weight, eps, constant_weight, next_early);
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysRmsNorm(llaisysTensor_t out, llaisysTensor_t in, llaisysTensor_t weight,
                                   float eps) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in && weight, "rms_norm: null tensor");
        // the caller's weight may come from work still queued: loaded after the wait
        llaisys::ops::rms_norm(out->tensor, in->tensor, weight->tensor, eps, false);
    });
}

__C llaisysStatus_t llaisysAddRmsNorm(llaisysTensor_t out, llaisysTensor_t x,
                                      llaisysTensor_t residual, llaisysTensor_t weight, float eps) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && x && residual && weight, "add_rms_norm: null tensor");
        llaisys::ops::add_rms_norm(out->tensor, x->tensor, residual->tensor, weight->tensor, eps,
                                   false, false);
    });
}
