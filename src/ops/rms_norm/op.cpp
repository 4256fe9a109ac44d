#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/rms_norm/cpu/rms_norm_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/rms_norm/nvidia/rms_norm_nvidia.hpp"
#endif

#include <cmath>

namespace llaisys::ops {

void rms_norm(tensor_t out, tensor_t in, tensor_t weight, float eps) {
    check_not_null("rms_norm", {&out, &in, &weight});
    check_same_device("rms_norm", {out, in, weight});
    check_float("rms_norm", {in});
    check_same_dtype("rms_norm", {out, in, weight});
    check_ndim("rms_norm", in, 2, "in");
    check_ndim("rms_norm", weight, 1, "weight");
    CHECK_SHAPE(out->shape() == in->shape() && weight->dim(0) == in->dim(1), "rms_norm: out ",
                shape_str(out->shape()), ", in ", shape_str(in->shape()), " and weight ",
                shape_str(weight->shape()), " do not fit");
    CHECK_ARG(in->dim(1) > 0, "rms_norm: rows are empty");
    CHECK_ARG(std::isfinite(eps) && eps >= 0.0f, "rms_norm: eps must be finite and >= 0, got ",
              eps);
    check_rows_contiguous("rms_norm", {out, in});
    check_contiguous("rms_norm", {weight});
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::rms_norm(out->data(), row_stride(out), in->data(), row_stride(in),
                             weight->data(), in->dtype(), in->dim(0), in->dim(1), eps);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::rms_norm(out->data(), row_stride(out), in->data(), row_stride(in),
                                weight->data(), in->dtype(), in->dim(0), in->dim(1), eps);
#endif
    default:
        unsupported_device("rms_norm", out);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysRmsNorm(llaisysTensor_t out, llaisysTensor_t in, llaisysTensor_t weight,
                                   float eps) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in && weight, "rms_norm: null tensor");
        llaisys::ops::rms_norm(out->tensor, in->tensor, weight->tensor, eps);
    });
}
