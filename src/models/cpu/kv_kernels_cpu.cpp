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

// The query heads sharing a kv head read each of its key and value rows once. With enough
// tokens to share out, a task is one token and walks its kv heads in turn, so the rest of
// each cell row (the other heads' parts, fetched with the first) is read from cache; with
// few tokens (single-stream decode) a task is one (token, kv head), so both cores work.
template <typename T>
void attention(T *out, const T *q, const std::byte *k_cache, const std::byte *v_cache,
               const int32_t *table, const int64_t *row, const int32_t *n_keys, size_t bs,
               const AttentionShape &s, float scale, AttentionTaskFn task) {
    const size_t group = s.nh / s.nkvh;
    const int threads = device::cpu::num_threads();
    const size_t heads_per_task = s.n >= size_t(4 * threads) ? s.nkvh : 1;
    const ptrdiff_t tasks = ptrdiff_t(s.n * s.nkvh / heads_per_task);
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> &qf = t_q, &acc = t_acc, &scores = t_scores;
        qf.resize(group * s.d);
        acc.resize(group * s.dv);
#pragma omp for schedule(dynamic)
        for (ptrdiff_t t = 0; t < tasks; ++t) {
            const size_t first = size_t(t) * heads_per_task, i = first / s.nkvh;
            scores.resize(group * size_t(n_keys[i]));
            for (size_t kvh = first % s.nkvh; kvh < first % s.nkvh + heads_per_task; ++kvh) {
                const size_t h0 = kvh * group;
                for (size_t g = 0; g < group; ++g)
                    for (size_t c = 0; c < s.d; ++c)
                        qf[g * s.d + c] = to_f32(q[(i * s.nh + h0 + g) * s.d + c]) * scale;
                task(AttentionTask{qf.data(), k_cache, v_cache, table + row[i], bs,
                                   size_t(n_keys[i]), group, s.d, s.dv, s.nkvh, kvh, scores.data(),
                                   acc.data()});
                for (size_t g = 0; g < group; ++g)
                    for (size_t c = 0; c < s.dv; ++c)
                        out[(i * s.nh + h0 + g) * s.dv + c] = from_f32<T>(acc[g * s.dv + c]);
            }
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
