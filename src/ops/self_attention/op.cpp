#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/self_attention/cpu/self_attention_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/self_attention/nvidia/self_attention_nvidia.hpp"
#endif

#include <cmath>

namespace llaisys::ops {

void self_attention(tensor_t out, tensor_t q, tensor_t k, tensor_t v, float scale) {
    const char *op = "self_attention";
    check_not_null(op, {&out, &q, &k, &v});
    check_same_device(op, {out, q, k, v});
    check_float(op, {q});
    check_same_dtype(op, {out, q, k, v});
    for (const tensor_t &t : {out, q, k, v}) check_ndim(op, t, 3, "every operand");
    const size_t qlen = q->dim(0), nh = q->dim(1), d = q->dim(2);
    const size_t klen = k->dim(0), nkvh = k->dim(1), dv = v->dim(2);
    CHECK_SHAPE(k->dim(2) == d && v->dim(0) == klen && v->dim(1) == nkvh, op, ": q ",
                shape_str(q->shape()), ", k ", shape_str(k->shape()), " and v ",
                shape_str(v->shape()), " do not fit");
    CHECK_SHAPE(out->dim(0) == qlen && out->dim(1) == nh && out->dim(2) == dv, op, ": out ",
                shape_str(out->shape()), " must be [", qlen, ", ", nh, ", ", dv, "]");
    CHECK_SHAPE(nkvh > 0 && nh % nkvh == 0, op, ": ", nh, " heads are not a multiple of ", nkvh,
                " kv heads");
    CHECK_SHAPE(klen >= qlen, op, ": ", klen, " keys cannot serve ", qlen, " causal queries");
    CHECK_ARG(d > 0 && dv > 0, op, ": head dims must be non-zero");
    CHECK_ARG(std::isfinite(scale), op, ": scale must be finite");
    check_unit_last_stride(op, {out, q, k, v});
    const auto &so = out->strides(), &sq = q->strides(), &sk = k->strides(), &sv = v->strides();
    const cpu::AttentionArgs args{qlen,  klen,  nh,    nkvh,  d,     dv,    so[0], so[1],
                                  sq[0], sq[1], sk[0], sk[1], sv[0], sv[1], scale};
    switch (out->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::self_attention(out->data(), q->data(), k->data(), v->data(), q->dtype(), args);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::self_attention(out->data(), q->data(), k->data(), v->data(), q->dtype(),
                                      args, out->device_id());
#endif
    default:
        unsupported_device(op, out);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysSelfAttention(llaisysTensor_t out, llaisysTensor_t q, llaisysTensor_t k,
                                         llaisysTensor_t v, float scale) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out && q && k && v, "self_attention: null tensor");
        llaisys::ops::self_attention(out->tensor, q->tensor, k->tensor, v->tensor, scale);
    });
}
