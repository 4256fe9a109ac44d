#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/rope/cpu/rope_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/rope/nvidia/rope_nvidia.hpp"
#endif

namespace llaisys::ops {

void rope(tensor_t out, tensor_t in, tensor_t pos_ids, float theta) {
    check_rope("rope", out, in, pos_ids, theta);
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
