// C API of tensors: thin wrappers over llaisys::Tensor.
#include "tensor/tensor.hpp"

using llaisys::api_guard;

namespace {
llaisys::tensor_t &unwrap(llaisysTensor_t t) {
    CHECK_ARG(t != nullptr && t->tensor, "null tensor handle");
    return t->tensor;
}
llaisysTensor_t wrap(llaisys::tensor_t t) { return new LlaisysTensor{std::move(t)}; }
} // namespace

__C llaisysStatus_t tensorCreate(const size_t *shape, size_t ndim, llaisysDataType_t dtype,
                                 llaisysDeviceType_t device, int device_id, llaisysTensor_t *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "tensorCreate: null out");
        CHECK_ARG(shape != nullptr || ndim == 0, "tensorCreate: null shape");
        *out = wrap(llaisys::Tensor::create(std::vector<size_t>(shape, shape + ndim), dtype, device,
                                            device_id));
    });
}

__C void tensorDestroy(llaisysTensor_t tensor) { delete tensor; }

__C void *tensorGetData(llaisysTensor_t t) { return t ? t->tensor->data() : nullptr; }
__C size_t tensorGetNdim(llaisysTensor_t t) { return t ? t->tensor->ndim() : 0; }
__C void tensorGetShape(llaisysTensor_t t, size_t *shape) {
    if (t && shape) std::copy(t->tensor->shape().begin(), t->tensor->shape().end(), shape);
}
__C void tensorGetStrides(llaisysTensor_t t, ptrdiff_t *strides) {
    if (t && strides) std::copy(t->tensor->strides().begin(), t->tensor->strides().end(), strides);
}
__C llaisysDataType_t tensorGetDataType(llaisysTensor_t t) {
    return t ? t->tensor->dtype() : LLAISYS_DTYPE_INVALID;
}
__C llaisysDeviceType_t tensorGetDeviceType(llaisysTensor_t t) {
    return t ? t->tensor->device_type() : LLAISYS_DEVICE_CPU;
}
__C int tensorGetDeviceId(llaisysTensor_t t) { return t ? t->tensor->device_id() : -1; }
__C int tensorIsContiguous(llaisysTensor_t t) { return t ? t->tensor->is_contiguous() : 0; }

__C llaisysStatus_t tensorLoad(llaisysTensor_t t, const void *host_data) {
    return api_guard([&] { unwrap(t)->load(host_data); });
}

__C llaisysStatus_t tensorRead(llaisysTensor_t t, void *host_data) {
    return api_guard([&] { unwrap(t)->read(host_data); });
}

__C llaisysStatus_t tensorView(llaisysTensor_t t, const size_t *shape, size_t ndim,
                               llaisysTensor_t *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr && (shape != nullptr || ndim == 0), "tensorView: null argument");
        *out = wrap(unwrap(t)->view(std::vector<size_t>(shape, shape + ndim)));
    });
}

__C llaisysStatus_t tensorPermute(llaisysTensor_t t, const size_t *order, llaisysTensor_t *out) {
    return api_guard([&] {
        auto &tensor = unwrap(t);
        CHECK_ARG(out != nullptr && (order != nullptr || tensor->ndim() == 0),
                  "tensorPermute: null argument");
        *out = wrap(tensor->permute(std::vector<size_t>(order, order + tensor->ndim())));
    });
}

__C llaisysStatus_t tensorSlice(llaisysTensor_t t, size_t dim, size_t start, size_t end,
                                llaisysTensor_t *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "tensorSlice: null out");
        *out = wrap(unwrap(t)->slice(dim, start, end));
    });
}

__C llaisysStatus_t tensorContiguous(llaisysTensor_t t, llaisysTensor_t *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "tensorContiguous: null out");
        *out = wrap(unwrap(t)->contiguous());
    });
}

__C llaisysStatus_t tensorDebug(llaisysTensor_t t) {
    return api_guard([&] { unwrap(t)->debug(); });
}
