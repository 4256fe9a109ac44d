#include "ops/checks.hpp"
#include "ops/embedding/cpu/embedding_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/embedding/nvidia/embedding_nvidia.hpp"
#endif
#include "ops/ops.hpp"

namespace llaisys::ops {

void embedding(tensor_t out, tensor_t index, tensor_t weight) {
    check_not_null("embedding", {&out, &index, &weight});
    check_same_device("embedding", {out, index, weight});
    check_float("embedding", {weight});
    check_same_dtype("embedding", {out, weight});
    check_dtype("embedding", index, LLAISYS_DTYPE_I64, "index");
    check_ndim("embedding", out, 2, "out");
    check_ndim("embedding", index, 1, "index");
    check_ndim("embedding", weight, 2, "weight");
    CHECK_SHAPE(out->dim(0) == index->dim(0) && out->dim(1) == weight->dim(1), "embedding: out ",
                shape_str(out->shape()), " does not fit index ", shape_str(index->shape()),
                " and weight ", shape_str(weight->shape()));
    check_contiguous("embedding", {out, index, weight});
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::embedding(out->data(), reinterpret_cast<const int64_t *>(index->data()),
                              weight->data(), index->dim(0), weight->dim(0),
                              dtype_bytes(weight->dtype(), weight->dim(1)));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::embedding(out->data(), reinterpret_cast<const int64_t *>(index->data()),
                                 weight->data(), index->dim(0), weight->dim(0),
                                 dtype_bytes(weight->dtype(), weight->dim(1)));
#endif
    default:
        unsupported_device("embedding", out);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysEmbedding(llaisysTensor_t out, llaisysTensor_t index,
                                     llaisysTensor_t weight) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && index && weight, "embedding: null tensor");
        llaisys::ops::embedding(out->tensor, index->tensor, weight->tensor);
    });
}
