#include "models/cpu/kv_kernels_cpu.hpp"

#include "core/dtype.hpp"
#include "device/cpu/cpu_features.hpp"
#include "models/cpu/attention_task.hpp"

#include <cstring>
#include <type_traits>
#include <vector>

namespace llaisys::models::cpu {

void scatter_rows(std::byte *dst, const int64_t *idx, const std::byte *src, size_t n,
                  size_t row_bytes) {
    for (size_t i = 0; i < n; ++i)
        std::memcpy(dst + size_t(idx[i]) * row_bytes, src + i * row_bytes, row_bytes);
}

void gather_rows(std::byte *dst, const std::byte *src, const int64_t *idx, size_t n,
                 size_t row_bytes) {
    for (size_t i = 0; i < n; ++i)
        std::memcpy(dst + i * row_bytes, src + size_t(idx[i]) * row_bytes, row_bytes);
}

namespace {

AttentionTaskFn task_for(llaisysDataType_t dtype) {
    AttentionTaskFn fn = nullptr;
    switch (device::cpu::kernel_path()) {
    case device::cpu::KernelPath::Avx512:
        fn = attention_task_avx512(dtype);
        break;
    case device::cpu::KernelPath::Avx2:
        fn = attention_task_avx2(dtype);
        break;
    default:
        fn = attention_task_generic(dtype);
    }
    CHECK_DTYPE(fn != nullptr, "paged_attention: unsupported dtype ", dtype_name(dtype));
    return fn;
}

// Grow-only per-thread scratch, so calls in steady state allocate nothing.
thread_local std::vector<float> t_q, t_acc, t_scores;

// One task per (token, kv head): the query heads sharing that kv head read each key and
// value row once.
template <typename T>
void attention(T *out, const T *q, const std::byte *k_cache, const std::byte *v_cache,
               const int32_t *table, const int64_t *row, const int32_t *n_keys, size_t bs,
               const AttentionShape &s, float scale, AttentionTaskFn task) {
    const size_t group = s.nh / s.nkvh;
    const ptrdiff_t tasks = ptrdiff_t(s.n * s.nkvh);
#pragma omp parallel num_threads(device::cpu::num_threads())
    {
        std::vector<float> &qf = t_q, &acc = t_acc, &scores = t_scores;
        qf.resize(group * s.d);
        acc.resize(group * s.dv);
#pragma omp for schedule(dynamic)
        for (ptrdiff_t t = 0; t < tasks; ++t) {
            const size_t i = size_t(t) / s.nkvh, kvh = size_t(t) % s.nkvh, h0 = kvh * group;
            for (size_t g = 0; g < group; ++g)
                for (size_t c = 0; c < s.d; ++c)
                    qf[g * s.d + c] = to_f32(q[(i * s.nh + h0 + g) * s.d + c]) * scale;
            scores.resize(group * size_t(n_keys[i]));
            task(AttentionTask{qf.data(), k_cache, v_cache, table + row[i], bs, size_t(n_keys[i]),
                               group, s.d, s.dv, s.nkvh, kvh, scores.data(), acc.data()});
            for (size_t g = 0; g < group; ++g)
                for (size_t c = 0; c < s.dv; ++c)
                    out[(i * s.nh + h0 + g) * s.dv + c] = from_f32<T>(acc[g * s.dv + c]);
        }
    }
}

} // namespace

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const AttentionShape &s, float scale,
                     llaisysDataType_t dtype) {
    dispatch_float(dtype, "paged_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        attention(reinterpret_cast<T *>(out), reinterpret_cast<const T *>(q), k_cache, v_cache,
                  table, row, n_keys, block_size, s, scale, task_for(dtype));
    });
}

} // namespace llaisys::models::cpu
