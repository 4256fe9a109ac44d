#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/rope/cpu/rope_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/rope/nvidia/rope_nvidia.hpp"
#endif

#include <cmath>

namespace llaisys::ops {

void rope(tensor_t out, tensor_t in, tensor_t pos_ids, float theta) {
    check_not_null("rope", {&out, &in, &pos_ids});
    check_same_device("rope", {out, in, pos_ids});
    check_float("rope", {in});
    check_same_dtype("rope", {out, in});
    check_dtype("rope", pos_ids, LLAISYS_DTYPE_I64, "pos_ids");
    check_ndim("rope", in, 3, "in");
    check_ndim("rope", pos_ids, 1, "pos_ids");
    CHECK_SHAPE(out->shape() == in->shape(), "rope: out ", shape_str(out->shape()), " and in ",
                shape_str(in->shape()), " differ");
    CHECK_SHAPE(pos_ids->dim(0) == in->dim(0), "rope: pos_ids ", shape_str(pos_ids->shape()),
                " does not match ", in->dim(0), " tokens");
    CHECK_SHAPE(in->dim(2) % 2 == 0, "rope: head dim ", in->dim(2), " must be even");
    CHECK_ARG(std::isfinite(theta) && theta > 0.0f, "rope: theta must be positive, got ", theta);
    check_unit_last_stride("rope", {out, in});
    check_contiguous("rope", {pos_ids});
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::rope(out->data(), {out->strides()[0], out->strides()[1]}, in->data(),
                         {in->strides()[0], in->strides()[1]},
                         reinterpret_cast<const int64_t *>(pos_ids->data()), in->dtype(),
                         in->dim(0), in->dim(1), in->dim(2), theta);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::rope(out->data(), {out->strides()[0], out->strides()[1]}, in->data(),
                            {in->strides()[0], in->strides()[1]},
                            reinterpret_cast<const int64_t *>(pos_ids->data()), in->dtype(),
                            in->dim(0), in->dim(1), in->dim(2), theta);
#endif
    default:
        unsupported_device("rope", out);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysRope(llaisysTensor_t out, llaisysTensor_t in, llaisysTensor_t pos_ids,
                                float theta) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in && pos_ids, "rope: null tensor");
        llaisys::ops::rope(out->tensor, in->tensor, pos_ids->tensor, theta);
    });
}
