#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/rearrange/cpu/rearrange_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/rearrange/nvidia/rearrange_nvidia.hpp"
#endif

namespace llaisys {

namespace ops {

void rearrange(tensor_t out, tensor_t in) {
    check_not_null("rearrange", {&out, &in});
    check_same_device("rearrange", {out, in});
    check_same_dtype("rearrange", {out, in});
    CHECK_DTYPE(!dtype_is_quantized(out->dtype()), "rearrange: quantized tensors are not strided");
    CHECK_SHAPE(out->shape() == in->shape(), "rearrange: shapes differ: ", shape_str(out->shape()),
                " vs ", shape_str(in->shape()));
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::rearrange(out->data(), in->data(), out->shape(), out->strides(), in->strides(),
                              dtype_size(out->dtype()));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::rearrange(out->data(), in->data(), out->shape(), out->strides(),
                                 in->strides(), dtype_size(out->dtype()));
#endif
    default:
        unsupported_device("rearrange", out);
    }
}

} // namespace ops

void rearrange(tensor_t out, tensor_t in) { ops::rearrange(std::move(out), std::move(in)); }

} // namespace llaisys

__C llaisysStatus_t llaisysRearrange(llaisysTensor_t out, llaisysTensor_t in) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in, "rearrange: null tensor");
        llaisys::ops::rearrange(out->tensor, in->tensor);
    });
}
