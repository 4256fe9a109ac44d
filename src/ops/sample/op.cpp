#include "ops/checks.hpp"
#include "ops/ops.hpp"
#include "ops/sample/cpu/sample_cpu.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "ops/sample/nvidia/sample_nvidia.hpp"
#endif

#include <cmath>
#include <limits>

namespace llaisys::ops {

void sample(tensor_t out_ids, tensor_t logits, const LlaisysSamplingParams *params) {
    check_not_null("sample", {&out_ids, &logits});
    check_same_device("sample", {out_ids, logits});
    check_float("sample", {logits});
    check_dtype("sample", out_ids, LLAISYS_DTYPE_I64, "out_ids");
    check_ndim("sample", logits, 2, "logits");
    check_ndim("sample", out_ids, 1, "out_ids");
    const size_t rows = logits->dim(0), vocab = logits->dim(1);
    CHECK_SHAPE(out_ids->dim(0) == rows, "sample: out_ids ", shape_str(out_ids->shape()),
                " does not match ", rows, " rows");
    CHECK_ARG(vocab > 0, "sample: logits rows are empty");
    CHECK_ARG(vocab <= size_t(std::numeric_limits<int32_t>::max()), "sample: vocab ", vocab,
              " too large");
    CHECK_ARG(params != nullptr || rows == 0, "sample: null params");
    for (size_t r = 0; r < rows; ++r) {
        const LlaisysSamplingParams &p = params[r];
        CHECK_ARG(!std::isnan(p.temperature) && std::isfinite(p.temperature), "sample: row ", r,
                  ": temperature must be finite, got ", p.temperature);
        CHECK_ARG(p.top_p > 0.0f && p.top_p <= 1.0f, "sample: row ", r,
                  ": top_p must be in (0, 1], got ", p.top_p);
        CHECK_ARG(p.min_p >= 0.0f && p.min_p <= 1.0f, "sample: row ", r,
                  ": min_p must be in [0, 1], got ", p.min_p);
    }
    check_contiguous("sample", {out_ids});
    check_rows_contiguous("sample", {logits});
    switch (logits->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::sample(reinterpret_cast<int64_t *>(out_ids->data()), logits->data(),
                           logits->dtype(), rows, vocab, row_stride(logits), params);
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA: { // the kernel reads the params from device memory
        const tensor_t on_device =
            Tensor::create({rows * sizeof(LlaisysSamplingParams)}, LLAISYS_DTYPE_U8,
                           LLAISYS_DEVICE_NVIDIA, logits->device_id());
        on_device->load(params);
        return sample(out_ids, logits, on_device);
    }
#endif
    default:
        unsupported_device("sample", logits);
    }
}

void sample(tensor_t out_ids, tensor_t logits, const tensor_t &params) {
    check_same_device("sample", {out_ids, logits, params});
    CHECK_SHAPE(params->nbytes() >= logits->dim(0) * sizeof(LlaisysSamplingParams),
                "sample: params hold ", params->nbytes(), " bytes, ", logits->dim(0), " rows need ",
                logits->dim(0) * sizeof(LlaisysSamplingParams));
    switch (logits->device_type()) {
    case LLAISYS_DEVICE_CPU:
        return cpu::sample(reinterpret_cast<int64_t *>(out_ids->data()), logits->data(),
                           logits->dtype(), logits->dim(0), logits->dim(1), row_stride(logits),
                           reinterpret_cast<const LlaisysSamplingParams *>(params->data()));
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::sample(reinterpret_cast<int64_t *>(out_ids->data()), logits->data(),
                              logits->dtype(), logits->dim(0), logits->dim(1), row_stride(logits),
                              reinterpret_cast<const LlaisysSamplingParams *>(params->data()));
#endif
    default:
        unsupported_device("sample", logits);
    }
}

} // namespace llaisys::ops

__C llaisysStatus_t llaisysSample(llaisysTensor_t out_ids, llaisysTensor_t logits,
                                  const LlaisysSamplingParams *params) {
    return llaisys::api_guard([&] {
        CHECK_ARG(out_ids && logits, "sample: null tensor");
        llaisys::ops::sample(out_ids->tensor, logits->tensor, params);
    });
}
