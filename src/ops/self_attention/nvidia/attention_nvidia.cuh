// Causal attention on the GPU, one pair of kernels for every key layout: a KeyAddr policy
// says how many keys a query token reads (n_keys(t)), which key list they come from
// (list(t): tokens of one sequence share it) and at which element offsets key j's K/V rows
// start (k_row(t, j), v_row(t, j), every offset a multiple of k_pitch() / v_pitch()):
// contiguous keys for self_attention, cache cells through block tables for paged
// attention. bf16/f16 heads of 64 or 128 dims go to the tensor-core kernels of
// flash_attention_nvidia.cuh (tiles of many query tokens of one list to its prefill
// kernel, the other tokens to its decode kernel); the kernels below take the rest.
//
// Grid: x = query token, y = (kv head, chunk of up to kMaxGroup of its query heads),
// z = split of the token's keys (flash-decoding: short batches of long contexts spread
// over the GPU, their partial softmaxes merged by a second kernel). Each token's keys are
// cut into gridDim.z equal parts of its own length, so the grid depends on the batch
// size alone and a captured graph serves every context length. A block of kWarps
// warps walks its keys one per warp; a lane owns dims lane, lane + 32, ... of the head.
#pragma once

#include "ops/self_attention/nvidia/flash_attention_nvidia.cuh"
#include "tensor/tensor.hpp"

#include <algorithm>
#include <type_traits>

namespace llaisys::ops::nvidia {

using namespace device::nvidia;

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;           // query heads per block
constexpr int kTargetBlocks = 8 * 132; // 8 resident blocks per SM of an H100/H200
constexpr int kMinSplitKeys = 16;      // the per-token kernel's shortest split
constexpr int kMaxSplits = 64;

// Dot product of q_s[h] (f32, shared) with a K row, for the first nheads heads: 16-byte
// loads when Vec (d a multiple of the vector width), else one element at a time.
template <bool Vec, int DC, typename T>
__device__ __forceinline__ void dot_heads(float (&s)[kMaxGroup], const float (*q_s)[DC * 32],
                                          const T *kr, int d, int nheads) {
    if constexpr (Vec) {
        constexpr int V = 16 / sizeof(T);
        for (int c = 0; c < d; c += V) {
            const uint4 raw = *reinterpret_cast<const uint4 *>(kr + c);
            const T *e = reinterpret_cast<const T *>(&raw);
            float kf[V];
#pragma unroll
            for (int i = 0; i < V; ++i) kf[i] = to_float(e[i]);
#pragma unroll
            for (int h = 0; h < kMaxGroup; ++h) {
                if (h >= nheads) break;
                const float4 *qv = reinterpret_cast<const float4 *>(&q_s[h][c]);
#pragma unroll
                for (int i = 0; i < V / 4; ++i) {
                    const float4 qq = qv[i];
                    s[h] += qq.x * kf[4 * i] + qq.y * kf[4 * i + 1] + qq.z * kf[4 * i + 2] +
                            qq.w * kf[4 * i + 3];
                }
            }
        }
    } else {
        for (int c = 0; c < d; ++c) {
            const float kf = to_float(kr[c]);
#pragma unroll
            for (int h = 0; h < kMaxGroup; ++h) {
                if (h >= nheads) break;
                s[h] += q_s[h][c] * kf;
            }
        }
    }
}

// Each warp takes tiles of 32 keys: lane i scores key i of the tile against every head,
// the tile updates the running softmax once, then the warp adds the tile's values with
// lanes over the head dims (each key's weight shuffled from its lane). With flash, tokens
// of the tiles the flash kernel takes are skipped.
template <int DC, bool Vec, typename T, typename KeyAddr>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(T *out, const T *q, const T *k, const T *v, AttentionDims a, KeyAddr keys,
                     SplitOut part, bool flash) {
    __shared__ __align__(16) float q_s[kMaxGroup][DC * 32];
    __shared__ float m_s[kWarps][kMaxGroup], l_s[kWarps][kMaxGroup];
    __shared__ float o_s[kWarps][kMaxGroup][DC * 32];
    wait_for_prior_grid();
    allow_dependents_early();
    const int t = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (flash && flash_takes_token(keys, a.n, t)) return;
    const int group = a.nh / a.nkvh, chunks = (group + kMaxGroup - 1) / kMaxGroup;
    const int g = blockIdx.y / chunks, h0 = g * group + (blockIdx.y % chunks) * kMaxGroup;
    const int nheads = min(kMaxGroup, g * group + group - h0);
    const int n_keys = keys.n_keys(t);
    const int per_split = (n_keys + int(gridDim.z) - 1) / int(gridDim.z);
    const int j0 = blockIdx.z * per_split, j1 = min(n_keys, j0 + per_split);

    for (int i = threadIdx.x; i < kMaxGroup * DC * 32; i += blockDim.x) {
        const int h = i / (DC * 32), c = i % (DC * 32);
        q_s[h][c] =
            h < nheads && c < a.d
                ? to_float(q[ptrdiff_t(t) * a.q_token + ptrdiff_t(h0 + h) * a.q_head + c]) * a.scale
                : 0.0f;
    }
    __syncthreads();

    float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][DC];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int c = 0; c < DC; ++c) acc[h][c] = 0.0f;
    }
    for (int tile = j0 + warp * 32; tile < j1; tile += kWarps * 32) {
        const int j = tile + lane, count = min(32, j1 - tile);
        float s[kMaxGroup];
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) s[h] = 0.0f;
        if (lane < count)
            dot_heads<Vec, DC>(s, q_s, k + keys.k_row(t, j) + ptrdiff_t(g) * a.k_head, a.d, nheads);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
            if (h >= nheads) break;
            const float m_new = fmaxf(m[h], warp_max(lane < count ? s[h] : -INFINITY));
            const float corr = __expf(m[h] - m_new);
            s[h] = lane < count ? __expf(s[h] - m_new) : 0.0f; // now the key's weight
            l[h] = l[h] * corr + warp_sum(s[h]);
            m[h] = m_new;
#pragma unroll
            for (int c = 0; c < DC; ++c) acc[h][c] *= corr;
        }
        for (int i = 0; i < count; ++i) {
            const T *vr = v + keys.v_row(t, tile + i) + ptrdiff_t(g) * a.v_head;
            float vv[DC];
#pragma unroll
            for (int c = 0; c < DC; ++c) {
                const int dim = lane + 32 * c;
                vv[c] = dim < a.dv ? to_float(vr[dim]) : 0.0f;
            }
#pragma unroll
            for (int h = 0; h < kMaxGroup; ++h) {
                if (h >= nheads) break;
                const float p = __shfl_sync(0xffffffffu, s[h], i);
#pragma unroll
                for (int c = 0; c < DC; ++c) acc[h][c] = fmaf(p, vv[c], acc[h][c]);
            }
        }
    }
    // Merge the warps' softmaxes.
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
        if (lane == 0) {
            m_s[warp][h] = m[h];
            l_s[warp][h] = l[h];
        }
#pragma unroll
        for (int c = 0; c < DC; ++c) o_s[warp][h][lane + 32 * c] = acc[h][c];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < nheads * a.dv; i += blockDim.x) {
        const int h = i / a.dv, dim = i % a.dv;
        float mx = -INFINITY;
        for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, m_s[w][h]);
        float sum = 0.0f, o = 0.0f;
        for (int w = 0; w < kWarps; ++w) {
            const float f = m_s[w][h] == -INFINITY ? 0.0f : __expf(m_s[w][h] - mx);
            sum += l_s[w][h] * f;
            o += o_s[w][h][dim] * f;
        }
        write_head_output(out, a, part, t, h0 + h, dim, o, sum, mx);
    }
}

// out row (t, head) = the splits' partial softmaxes merged; a block per (t, head), of at
// least kMaxSplits threads: thread z reads split z's max and sum, so the block spends two
// reductions, not a serial walk over the splits, before the weighted sum of their outputs.
// Every load a thread can issue at once is issued at once, before the reductions: the max
// and sum of its split, and its first dimension's values in the first kMergeAhead splits
// (loads in turn cost an L2 round trip each, the kernel's whole time at one token).
constexpr int kMergeThreads = 128;
constexpr int kMergeAhead = 8;
static_assert(kMaxSplits <= kMergeThreads);
template <typename T, typename KeyAddr>
__global__ void __launch_bounds__(kMergeThreads)
    merge_splits_kernel(T *out, AttentionDims a, KeyAddr keys, SplitOut part, bool flash) {
    __shared__ float weight[kMaxSplits], scratch[32];
    wait_for_prior_grid();
    allow_dependents_early();
    const int t = blockIdx.x, head = blockIdx.y, z = threadIdx.x;
    if (flash && flash_takes_token(keys, a.n, t)) return;
    const size_t r0 = (size_t(t) * a.nh + head) * part.splits;
    const bool split = z < part.splits;
    const float l = split ? part.l[r0 + z] : 0.0f, m_split = split ? part.m[r0 + z] : 0.0f;
    float ahead[kMergeAhead];
#pragma unroll
    for (int s = 0; s < kMergeAhead; ++s)
        ahead[s] = s < part.splits && z < a.dv ? part.o[(r0 + s) * a.dv + z] : 0.0f;
    const bool live = l > 0.0f; // splits past n_keys are empty
    const float m = live ? m_split : -INFINITY;
    const float mx = block_reduce<true>(m, scratch);
    const float w = live ? l * __expf(m - mx) : 0.0f;
    const float sum = block_reduce<false>(w, scratch);
    if (split) weight[z] = w; // every split wrote its (normalised) o, empty ones 0
    __syncthreads();
    for (int dim = threadIdx.x; dim < a.dv; dim += blockDim.x) {
        float o = 0.0f;
        int s = 0;
        if (dim == z) { // the thread's first dimension: its first splits were loaded ahead
#pragma unroll
            for (int u = 0; u < kMergeAhead; ++u)
                if (u < part.splits) o += ahead[u] * weight[u];
            s = min(part.splits, kMergeAhead);
        }
        for (; s < part.splits; ++s) o += part.o[(r0 + s) * a.dv + dim] * weight[s];
        out[ptrdiff_t(t) * a.out_token + ptrdiff_t(head) * a.out_head + dim] =
            from_float<T>(sum > 0.0f ? o / sum : 0.0f);
    }
}

// Splits of each token's keys for the per-token kernel, units (token, KV head, chunk)
// blocks: enough blocks to fill kTargetBlocks, none shorter than kMinSplitKeys of max_keys.
// n * splits <= n + kTargetBlocks.
inline int attention_splits(int units, int max_keys) {
    units = std::max(units, 1);
    return std::max(
        1, std::min({(kTargetBlocks + units - 1) / units,
                     (std::max(max_keys, 1) + kMinSplitKeys - 1) / kMinSplitKeys, kMaxSplits}));
}

// Splits of each token's keys for the tensor-core decode kernel, units (token, KV head)
// blocks of which resident fit on the GPU at once: as many as keep every block resident (a
// partial second wave of blocks takes about as long as the first: on the H200, rounding
// down instead of up took a decode step of 64 x 1024 keys from 3.3-3.4 to 3.0 ms and one of
// 128 x 1024 from 4.2-4.4 to 3.9 ms), none shorter than its tile.
// n * splits <= max(n, resident).
inline int decode_splits(int units, int resident, int max_keys) {
    units = std::max(units, 1);
    return std::max(1,
                    std::min({resident / units,
                              (std::max(max_keys, 1) + kFlashKeys - 1) / kFlashKeys, kMaxSplits}));
}

// Launches attention_kernel on grid (tokens, KV heads x chunks, splits).
template <typename T, typename KeyAddr>
void per_token_attention(T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
                         const KeyAddr &keys, const SplitOut &part, bool flash, int chunks,
                         int splits) {
    const dim3 grid(unsigned(a.n), unsigned(a.nkvh * chunks), unsigned(splits));
    const int dc = (std::max(a.d, a.dv) + 31) / 32;
    // 16-byte K loads when every K row start is 16-byte aligned (k_row offsets are
    // multiples of the token/cell pitch, which the caller's strides give).
    const int vec = 16 / int(sizeof(T));
    const bool aligned = a.d % vec == 0 && a.k_head % vec == 0 && keys.k_pitch() % vec == 0 &&
                         reinterpret_cast<uintptr_t>(k) % 16 == 0;
    auto launch = [&](auto dc_tag, auto vec_tag) {
        launch_dependent(
            "attention",
            attention_kernel<decltype(dc_tag)::value, decltype(vec_tag)::value, T, KeyAddr>, grid,
            kWarps * 32, 0, out, q, k, v, a, keys, part, flash);
    };
    auto with_dc = [&](auto vec_tag) {
        if (dc <= 2) return launch(std::integral_constant<int, 2>(), vec_tag);
        if (dc <= 4) return launch(std::integral_constant<int, 4>(), vec_tag);
        launch(std::integral_constant<int, 8>(), vec_tag);
    };
    if (aligned)
        with_dc(std::true_type());
    else
        with_dc(std::false_type());
}

// Launches the attention of a.n query tokens, none reading more than max_keys keys, in runs
// of at most max_run consecutive tokens of one key list, on device device_id; settled: each
// token is its list's only query and its other keys were written before the kernel launched
// just before this one (flash_decode_kernel loads them before waiting for it). scratch (a.n *
// a.nh * splits * (a.dv + 2) floats) holds the splits' partial results; null: taken from the
// allocator for this call (never while a graph is being captured: the graph would keep
// writing to a block handed out again).
template <typename T, typename KeyAddr>
void attention(T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
               const KeyAddr &keys, int max_keys, int max_run, bool settled, int device_id,
               float *scratch, size_t scratch_floats) {
    CHECK_ARG(a.d <= 256 && a.dv <= 256,
              "attention: head dims above 256 are not supported on "
              "the GPU (d ",
              a.d, ", dv ", a.dv, ")");
    if (a.n == 0) return;
    bool tensor_cores = false, flash = false;
    if constexpr (!std::is_same_v<T, float>) {
        tensor_cores = flash_fits(out, q, k, v, a, keys);
        // A tile goes to the prefill kernel with kFlashMinTokens tokens in kFlashMaxRuns runs.
        flash =
            tensor_cores && a.n >= kFlashMinTokens && max_run * kFlashMaxRuns >= kFlashMinTokens;
        if (flash) flash_attention(out, q, k, v, a, keys);
    }
    const int chunks = (a.nh / a.nkvh + kMaxGroup - 1) / kMaxGroup;
    const bool decode_kernel = tensor_cores && a.nh / a.nkvh <= kFlashMaxGroup;
    int splits = 1;
    if (!decode_kernel)
        splits = attention_splits(a.n * a.nkvh * chunks, max_keys);
    else if constexpr (!std::is_same_v<T, float>)
        splits = decode_splits(
            a.n * a.nkvh, std::min(kTargetBlocks, flash_decode_resident_blocks<T, KeyAddr>(a.d)),
            max_keys);
    tensor_t owned;
    SplitOut part{nullptr, nullptr, nullptr, splits};
    if (splits > 1) {
        const size_t rows = size_t(a.n) * a.nh * splits, need = rows * (size_t(a.dv) + 2);
        if (!scratch) {
            owned = Tensor::create({need}, LLAISYS_DTYPE_F32, LLAISYS_DEVICE_NVIDIA, device_id);
            scratch = reinterpret_cast<float *>(owned->data());
        } else {
            CHECK_ARG(scratch_floats >= need, "attention: scratch of ", scratch_floats, " floats, ",
                      need, " needed");
        }
        part.o = scratch;
        part.m = part.o + rows * a.dv;
        part.l = part.m + rows;
    }
    if (decode_kernel) {
        if constexpr (!std::is_same_v<T, float>)
            flash_decode(
                out, q, k, v, a, keys, part, flash, settled && !flash,
                dim3(unsigned(std::min(a.n, kTargetBlocks)), unsigned(a.nkvh), unsigned(splits)));
    } else {
        per_token_attention(out, q, k, v, a, keys, part, flash, chunks, splits);
    }
    if (splits > 1) {
        launch_dependent("attention merge", merge_splits_kernel<T, KeyAddr>,
                         dim3(unsigned(a.n), unsigned(a.nh)), kMergeThreads, 0, out, a, keys, part,
                         flash);
    }
}

} // namespace llaisys::ops::nvidia
