// One task of CPU paged attention: the query heads sharing one KV head, for one token,
// over that token's keys or a range of them. Each kernel family (generic, AVX2, AVX-512) compiles
// the same code (attention_task_impl.hpp) for its instruction set; kv_kernels_cpu picks one.
#pragma once

#include "llaisys/llaisys.h"

#include <cstddef>
#include <cstdint>

namespace llaisys::models::cpu {

// Keys first_key .. first_key + n_keys - 1 of one token (all of them, or one part of a split):
// acc = sum_j exp(s_j - max) v_j with s = q . k^T, and max and sum = sum_j exp(s_j - max) per
// query head, so the caller divides (or merges the parts of a split first).
struct AttentionTask {
    const float *q;                     // [group, d] f32, already multiplied by the scale
    const std::byte *k_cache, *v_cache; // [cells, nkvh, d] and [cells, nkvh, dv] of the dtype
    const int32_t *table;               // key j is cell table[j / bs] * bs + j % bs
    size_t block_size, first_key, n_keys;
    size_t group, d, dv, nkvh, kvh;
    float *scores; // [group, n_keys] scratch
    float *acc;    // [group, dv] out
    float *max;    // [group] out
    float *sum;    // [group] out
};

using AttentionTaskFn = void (*)(const AttentionTask &);

// The task function of a cache dtype (F32/F16/BF16), or null for another dtype.
AttentionTaskFn attention_task_generic(llaisysDataType_t dtype);
AttentionTaskFn attention_task_avx2(llaisysDataType_t dtype);
AttentionTaskFn attention_task_avx512(llaisysDataType_t dtype);

} // namespace llaisys::models::cpu
