#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/swiglu/cpu/swiglu_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/swiglu/nvidia/swiglu_nvidia.hpp"
#endif

namespace llaisys::ops {

void check_swiglu(const tensor_t &out, const tensor_t &gate, const tensor_t &up) {
    check_not_null("swiglu", {&out, &gate, &up});
    check_same_device("swiglu", {out, gate, up});
    check_float("swiglu", {gate});
    check_same_dtype("swiglu", {out, gate, up});
    CHECK_SHAPE(out->shape() == gate->shape() && gate->shape() == up->shape(),
                "swiglu: shapes differ: ", shape_str(out->shape()), ", ", shape_str(gate->shape()),
                ", ", shape_str(up->shape()));
    check_contiguous("swiglu", {out, gate, up});
}

void swiglu(tensor_t out, tensor_t gate, tensor_t up) {
    check_swiglu(out, gate, up);
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::swiglu(out->data(), gate->data(), up->data(), out->dtype(), out->numel());
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::swiglu(out->data(), gate->data(), up->data(), out->dtype(), out->numel());
#endif
    default:
        unsupported_device("swiglu", out);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysSwiGLU(llaisysTensor_t out, llaisysTensor_t gate, llaisysTensor_t up) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && gate && up, "swiglu: null tensor");
        llaisys::ops::swiglu(out->tensor, gate->tensor, up->tensor);
    });
}
