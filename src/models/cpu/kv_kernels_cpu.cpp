#include "models/cpu/kv_kernels_cpu.hpp"

#include "core/dtype.hpp"
#include "device/cpu/cpu_features.hpp"
#include "models/cpu/attention_task.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace llaisys::models::cpu {

void move_rows(const RowMoves &m, bool scatter, const int64_t *idx, size_t n) {
    for (size_t j = 0; j < m.count; ++j) {
        const size_t bytes = m.row_bytes[j];
        for (size_t i = 0; i < n; ++i) {
            std::byte *cell = m.cells[j] + size_t(idx[i]) * bytes, *row = m.rows[j] + i * bytes;
            std::memcpy(scatter ? cell : row, scatter ? row : cell, bytes);
        }
    }
}

void take_sampled_ids(int64_t *tokens, const int32_t *prev_row, const int64_t *sampled, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (prev_row[i] >= 0) tokens[i] = sampled[prev_row[i]];
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

// Grow-only scratch, so calls in steady state allocate nothing: per thread, and the parts
// of split units (the calling thread's, shared by the team).
thread_local std::vector<float> t_q, t_acc, t_scores, t_parts;

// Keys per part below which splitting a unit further costs more than it spreads.
constexpr size_t kMinPartKeys = 64;

// The parts of one (token, kv head), each group x acc[dv] then group maxima then group sums
// (AttentionTask's outputs), merged into acc [group, dv] and sum [group]: each part's
// exp-sums are rescaled from its own maximum to the overall one.
void merge_parts(const float *first, size_t parts, size_t group, size_t dv, float *acc,
                 float *sum) {
    const size_t part_floats = group * (dv + 2);
    auto max_of = [&](size_t p, size_t g) { return first[p * part_floats + group * dv + g]; };
    for (size_t g = 0; g < group; ++g) {
        float m = -INFINITY;
        for (size_t p = 0; p < parts; ++p) m = std::max(m, max_of(p, g));
        std::fill(acc + g * dv, acc + (g + 1) * dv, 0.f);
        sum[g] = 0.f;
        for (size_t p = 0; p < parts; ++p) {
            if (max_of(p, g) == -INFINITY) continue; // a part without keys
            const float w = std::exp(max_of(p, g) - m);
            const float *part = first + p * part_floats;
            sum[g] += w * part[group * dv + group + g];
            for (size_t c = 0; c < dv; ++c) acc[g * dv + c] += w * part[g * dv + c];
        }
    }
}

// The query heads sharing a kv head read each of its key and value rows once. With enough
// tokens to share out, a unit of work is one token and walks its kv heads in turn, so the
// rest of each cell row (the other heads' parts, fetched with the first) is read from cache.
// With fewer, a unit is one (token, kv head), and when even those are too few for the threads
// (single-stream decode) each unit's keys are split into parts whose results are merged by
// their softmax maxima and sums (flash-decoding).
template <typename T>
void attention(T *out, const T *q, const std::byte *k_cache, const std::byte *v_cache,
               const int32_t *table, const int64_t *row, const int32_t *n_keys, size_t bs,
               const AttentionShape &s, float scale, AttentionTaskFn task) {
    const size_t group = s.nh / s.nkvh;
    const size_t threads = size_t(device::cpu::num_threads());
    const size_t heads_per_unit = s.n >= 4 * threads ? s.nkvh : 1;
    const size_t units = s.n * s.nkvh / heads_per_unit;
    size_t parts = 1; // splits only (token, kv head) units: the merge below relies on it
    if (heads_per_unit == 1 && units < 2 * threads) {
        const size_t most_keys = size_t(*std::max_element(n_keys, n_keys + s.n));
        parts = std::max<size_t>(
            1, std::min((4 * threads + units - 1) / units, most_keys / kMinPartKeys));
    }
    // Per part of a (token, kv head): group x (acc[dv], max, sum).
    const size_t part_floats = group * (s.dv + 2);
    if (parts > 1) t_parts.resize(units * parts * part_floats);
    float *part_out = t_parts.data();

    auto write_out = [&](size_t i, size_t kvh, const float *acc, const float *sum) {
        for (size_t g = 0; g < group; ++g) {
            const float inv = sum[g] > 0.f ? 1.f / sum[g] : 0.f;
            T *o = out + (i * s.nh + kvh * group + g) * s.dv;
            for (size_t c = 0; c < s.dv; ++c) o[c] = from_f32<T>(acc[g * s.dv + c] * inv);
        }
    };
#pragma omp parallel num_threads(int(threads))
    {
        std::vector<float> &qf = t_q, &acc = t_acc, &scores = t_scores;
        qf.resize(group * s.d);
        acc.resize(group * (s.dv + 2));
#pragma omp for schedule(dynamic)
        for (ptrdiff_t t = 0; t < ptrdiff_t(units * parts); ++t) {
            const size_t unit = size_t(t) / parts, part = size_t(t) % parts;
            const size_t first = unit * heads_per_unit, i = first / s.nkvh;
            const size_t keys = size_t(n_keys[i]);
            const size_t k0 = keys * part / parts, k1 = keys * (part + 1) / parts;
            scores.resize(group * (k1 - k0));
            for (size_t kvh = first % s.nkvh; kvh < first % s.nkvh + heads_per_unit; ++kvh) {
                const size_t h0 = kvh * group;
                for (size_t g = 0; g < group; ++g)
                    for (size_t c = 0; c < s.d; ++c)
                        qf[g * s.d + c] = to_f32(q[(i * s.nh + h0 + g) * s.d + c]) * scale;
                float *dst = parts > 1 ? part_out + size_t(t) * part_floats : acc.data();
                float *mx = dst + group * s.dv, *sum = mx + group;
                task(AttentionTask{qf.data(), k_cache, v_cache, table + row[i], bs, k0, k1 - k0,
                                   group, s.d, s.dv, s.nkvh, kvh, scores.data(), dst, mx, sum});
                if (parts == 1) write_out(i, kvh, dst, sum);
            }
        }
        if (parts > 1) { // the implied barrier above: every part is done
#pragma omp for schedule(static)
            for (ptrdiff_t u = 0; u < ptrdiff_t(units); ++u) {
                float *merged = acc.data(), *sum = merged + group * s.dv;
                merge_parts(part_out + size_t(u) * parts * part_floats, parts, group, s.dv, merged,
                            sum);
                write_out(size_t(u) / s.nkvh, size_t(u) % s.nkvh, merged, sum);
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
