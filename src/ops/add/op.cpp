#include "ops/add/cpu/add_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/add/nvidia/add_nvidia.hpp"
#endif
#include "ops/checks.hpp"
#include "ops/ops.hpp"

namespace llaisys::ops {

void add(tensor_t c, tensor_t a, tensor_t b) {
    check_not_null("add", {&c, &a, &b});
    check_same_device("add", {c, a, b});
    check_same_dtype("add", {c, a, b});
    CHECK_SHAPE(c->shape() == a->shape() && a->shape() == b->shape(),
                "add: shapes differ: ", shape_str(c->shape()), ", ", shape_str(a->shape()), ", ",
                shape_str(b->shape()));
    check_contiguous("add", {c, a, b});
    switch (c->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::add(c->data(), a->data(), b->data(), c->dtype(), c->numel());
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::add(c->data(), a->data(), b->data(), c->dtype(), c->numel());
#endif
    default:
        unsupported_device("add", c);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysAdd(llaisysTensor_t c, llaisysTensor_t a, llaisysTensor_t b) {
    return llaisys::api_guard([&] {
        CHECK_ARG(c && a && b, "add: null tensor");
        llaisys::ops::add(c->tensor, a->tensor, b->tensor);
    });
}
