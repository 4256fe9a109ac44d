#include "ops/sample/nvidia/sample_nvidia.hpp"

#include "ops/argmax/nvidia/argmax_nvidia.cuh"

#include <cub/block/block_scan.cuh>

namespace llaisys::ops::nvidia {

namespace {

constexpr int kThreads = 1024;

// splitmix64 finaliser, as on the CPU: a draw depends on the seed alone.
__device__ double uniform01(uint64_t seed) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return double(z >> 11) * 0x1.0p-53;
}

// Order-preserving key of a float: a > b exactly when key(a) > key(b); NaN sorts lowest.
__device__ __forceinline__ uint32_t order_key(float v) {
    if (v != v) return 0;
    const uint32_t u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <bool Count, typename T>
__device__ float mass_above(const T *row, size_t vocab, uint32_t key, float max_logit, float inv_t,
                            float *scratch) {
    float acc = 0.0f;
    for (size_t i = threadIdx.x; i < vocab; i += kThreads) {
        const float l = to_float(row[i]);
        if (order_key(l) >= key) acc += Count ? 1.0f : __expf((l - max_logit) * inv_t);
    }
    return block_reduce<false>(acc, scratch);
}

// The largest key K >= floor such that the tokens with key >= K weigh at least target
// (a count with Count, else probability mass): a bitwise search, 32 block passes.
template <bool Count, typename T>
__device__ uint32_t threshold_key(const T *row, size_t vocab, uint32_t floor, float target,
                                  float max_logit, float inv_t, float *scratch) {
    uint32_t key = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const uint32_t cand = key | (1u << bit);
        if (mass_above<Count>(row, vocab, max(cand, floor), max_logit, inv_t, scratch) >= target)
            key = cand;
    }
    return max(key, floor);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    sample_kernel(int64_t *out_ids, const T *logits, size_t vocab, ptrdiff_t row_stride,
                  const LlaisysSamplingParams *params) {
    using Scan = cub::BlockScan<float, kThreads>;
    __shared__ typename Scan::TempStorage scan_storage;
    __shared__ float scratch[32];
    __shared__ ArgBest arg_scratch[32];
    __shared__ int found, last_kept;
    wait_for_prior_grid();
    const LlaisysSamplingParams p = params[blockIdx.x];
    const T *row = logits + ptrdiff_t(blockIdx.x) * row_stride;
    const ArgBest best = block_argmax(row, vocab, arg_scratch);
    if (p.temperature <= 0.0f || p.top_k == 1) {
        if (threadIdx.x == 0) out_ids[blockIdx.x] = best.idx;
        return;
    }
    const float max_logit = best.val, inv_t = 1.0f / p.temperature;
    uint32_t key = 0;
    if (p.top_k > 0 && size_t(p.top_k) < vocab)
        key = threshold_key<true>(row, vocab, 0, float(p.top_k), max_logit, inv_t, scratch);
    if (p.top_p < 1.0f) {
        const float total = mass_above<false>(row, vocab, key, max_logit, inv_t, scratch);
        key = threshold_key<false>(row, vocab, key, p.top_p * total, max_logit, inv_t, scratch);
    }
    // The max has probability 1 before normalisation, so min-p is a plain floor.
    const float min_prob = p.min_p;

    // Kept mass of this thread's contiguous chunk, then the chunk holding the draw.
    const size_t chunk = (vocab + kThreads - 1) / kThreads;
    const size_t begin = min(vocab, threadIdx.x * chunk), end = min(vocab, begin + chunk);
    auto kept_prob = [&](size_t i) {
        const float l = to_float(row[i]);
        if (order_key(l) < key) return 0.0f;
        const float pr = __expf((l - max_logit) * inv_t);
        return pr >= min_prob ? pr : 0.0f;
    };
    float own = 0.0f;
    int own_last = -1;
    for (size_t i = begin; i < end; ++i) {
        const float pr = kept_prob(i);
        own += pr;
        if (pr > 0.0f) own_last = int(i);
    }
    float before = 0.0f, kept = 0.0f;
    Scan(scan_storage).ExclusiveSum(own, before, kept);
    if (threadIdx.x == 0) {
        found = INT_MAX;
        last_kept = -1;
    }
    __syncthreads();
    atomicMax(&last_kept, own_last);
    const float target = float(uniform01(p.seed) * double(kept));
    if (own > 0.0f && target >= before && target < before + own) {
        float cumulative = before;
        for (size_t i = begin; i < end; ++i) {
            cumulative += kept_prob(i);
            if (target < cumulative) {
                atomicMin(&found, int(i));
                break;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0)
        out_ids[blockIdx.x] = found != INT_MAX ? found : last_kept >= 0 ? last_kept : best.idx;
}

} // namespace

void sample(int64_t *out_ids, const std::byte *logits, llaisysDataType_t dtype, size_t rows,
            size_t vocab, ptrdiff_t row_stride, const LlaisysSamplingParams *params) {
    if (rows == 0) return;
    dispatch_cuda_float(dtype, "sample", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        // A dependent launch: its block is resident when the logits' product finishes.
        launch_dependent("sample", sample_kernel<T>, unsigned(rows), kThreads, 0, out_ids,
                         reinterpret_cast<const T *>(logits), vocab, row_stride, params);
    });
}

} // namespace llaisys::ops::nvidia
