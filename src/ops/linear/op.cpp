#include "ops/checks.hpp"
#include "ops/linear/cpu/linear_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/linear/nvidia/linear_nvidia.hpp"
#endif
#include "ops/ops.hpp"

#include <array>

namespace llaisys::ops {

namespace {

// The operands as the device kernels take them, once every check passed.
cpu::LinearOperands checked(const tensor_t &out, const tensor_t &in, const tensor_t &weight,
                            const tensor_t &bias) {
    check_not_null("linear", {&out, &in, &weight});
    check_same_device("linear", {out, in, weight});
    check_ndim("linear", in, 2, "in");
    check_ndim("linear", weight, 2, "weight");
    check_ndim("linear", out, 2, "out");
    const size_t m = in->dim(0), k = in->dim(1), n = weight->dim(0);
    CHECK_SHAPE(weight->dim(1) == k, "linear: in ", shape_str(in->shape()), " and weight ",
                shape_str(weight->shape()), " differ in k");
    CHECK_SHAPE(out->dim(0) == m && out->dim(1) == n, "linear: out ", shape_str(out->shape()),
                " is not [", m, ", ", n, "]");
    CHECK_ARG(m > 0 && n > 0 && k > 0, "linear: empty operand (m=", m, ", n=", n, ", k=", k, ")");

    const llaisysDataType_t wtype = weight->dtype();
    if (dtype_is_quantized(wtype)) {
        check_dtype("linear", in, LLAISYS_DTYPE_F32, "in (with quantized weight)");
        check_dtype("linear", out, LLAISYS_DTYPE_F32, "out (with quantized weight)");
    } else {
        CHECK_DTYPE(dtype_is_float(wtype), "linear: unsupported weight dtype ", dtype_name(wtype));
        check_same_dtype("linear", {weight, in, out});
    }
    check_contiguous("linear", {out, weight});
    CHECK_SHAPE(in->rows_contiguous(), "linear: in rows must be contiguous");
    if (bias) {
        check_same_device("linear", {out, bias});
        check_dtype("linear", bias, out->dtype(), "bias");
        check_ndim("linear", bias, 1, "bias");
        CHECK_SHAPE(bias->dim(0) == n, "linear: bias ", shape_str(bias->shape()), " is not [", n,
                    "]");
        check_contiguous("linear", {bias});
    }
    return {out->data(),
            in->data(),
            m > 1 ? size_t(in->strides()[0]) : k,
            weight->data(),
            bias ? bias->data() : nullptr,
            wtype,
            in->dtype(),
            m,
            n,
            k};
}

using Products = std::array<cpu::LinearOperands, cpu::kMaxSharedInput>;

// The products' operands once every check passed; returns how many.
size_t checked_products(const tensor_t &in, std::initializer_list<LinearProduct> products,
                        Products &ops) {
    CHECK_ARG(products.size() >= 1 && products.size() <= cpu::kMaxSharedInput, "linear: 1 to ",
              cpu::kMaxSharedInput, " products of one input, got ", products.size());
    size_t count = 0;
    for (const LinearProduct &p : products) ops[count++] = checked(p.out, in, p.weight, p.bias);
    return count;
}

void run_checked(const tensor_t &in, const Products &ops, size_t count, bool constant_weights) {
    switch (in->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::linear_shared_input(ops.data(), count);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::linear_shared_input(ops.data(), count, constant_weights);
#endif
    default:
        unsupported_device("linear", in);
    }
}

void run_products(tensor_t in, std::initializer_list<LinearProduct> products,
                  bool constant_weights) {
    Products ops;
    const size_t count = checked_products(in, products, ops);
    run_checked(in, ops, count, constant_weights);
}

} // namespace

void linear(tensor_t out, tensor_t in, tensor_t weight, tensor_t bias) {
    run_products(in, {{out, weight, bias}}, false);
}

void linear_shared_input(tensor_t in, std::initializer_list<LinearProduct> products) {
    run_products(in, products, true);
}

void linear_swiglu(tensor_t out, tensor_t in, const LinearProduct &gate, const LinearProduct &up,
                   bool constant_weights) {
    check_not_null("linear", {&in});
    check_swiglu(out, gate.out, up.out);
    Products ops;
    const size_t count = checked_products(in, {gate, up}, ops);
#ifdef LLAISYS_ENABLE_NVIDIA
    if (in->device_type() == LLAISYS_DEVICE_NVIDIA &&
        nvidia::linear_swiglu(ops.data(), out->data(), constant_weights))
        return;
#endif
    run_checked(in, ops, count, constant_weights);
    swiglu(out, gate.out, up.out);
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysLinearSwiGLU(llaisysTensor_t out, llaisysTensor_t in,
                                        llaisysTensor_t gate_weight, llaisysTensor_t gate_bias,
                                        llaisysTensor_t up_weight, llaisysTensor_t up_bias,
                                        llaisysTensor_t gate, llaisysTensor_t up) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in && gate_weight && up_weight && gate && up,
                  "linear_swiglu: null tensor");
        auto t = [](llaisysTensor_t h) { return h ? h->tensor : nullptr; };
        llaisys::ops::linear_swiglu(t(out), t(in), {t(gate), t(gate_weight), t(gate_bias)},
                                    {t(up), t(up_weight), t(up_bias)}, false);
    });
}

__C llaisysStatus_t llaisysLinear(llaisysTensor_t out, llaisysTensor_t in, llaisysTensor_t weight,
                                  llaisysTensor_t bias) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && in && weight, "linear: null tensor");
        llaisys::ops::linear(out->tensor, in->tensor, weight->tensor,
                             bias ? bias->tensor : nullptr);
    });
}
