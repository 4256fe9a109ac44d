// Attention on the tensor cores (mma.sync m16n8k16, f32 accumulate) for bf16/f16 heads of
// 64 or 128 dims: keys stream through shared memory kFlashKeys at a time (cp.async, two
// stages) and each query row keeps its running softmax and output in registers.
//
// Prefill (flash-attention 2): a block of kFlashWarps warps takes kFlashRows consecutive
// query tokens of one head, 16 rows per warp. A tile's tokens may come from up to
// kFlashMaxRuns runs of consecutive tokens that share one key list (the tail of one
// sequence and the head of the next in a batch): the block walks each run's keys with the
// rows of the other runs masked out. A token sees keys 0..n_keys(t)-1 of its list, so
// causality and a cached prefix come from n_keys alone. Tiles of fewer than
// kFlashMinTokens tokens or of more runs (decode batches: one token a sequence) are left to
// the per-token kernels, which skip the tiles taken here.
//
// Decode (per token): the query heads of one KV head are the 16 rows of one tile, each warp
// takes 16 keys of every shared tile, and the warps' softmaxes merge at the end; the keys
// are split over blocks as in attention_nvidia.cuh.
#pragma once

#include "device/nvidia/nvidia_common.cuh"

#include <climits>
#include <cstdint>
#include <type_traits>

namespace llaisys::ops::nvidia {

using namespace device::nvidia;

struct AttentionDims {
    int n, nh, nkvh, d, dv;
    ptrdiff_t out_token, out_head, q_token, q_head;
    ptrdiff_t k_head, v_head; // elements between kv heads within a key row
    float scale;
};

// Partial results of split z: o [n, nh, splits, dv] normalised by l, then m and l.
struct SplitOut {
    float *o, *m, *l;
    int splits;
};

// One output element of (token t, head) once a block has merged its warps' softmaxes: o / sum
// written to out, or kept as split blockIdx.z's part for the merge (m_ln: the split's max
// score in natural logs).
template <typename T>
__device__ void write_head_output(T *out, const AttentionDims &a, const SplitOut &part, int t,
                                  int head, int dim, float o, float sum, float m_ln) {
    const float value = sum > 0.0f ? o / sum : 0.0f;
    if (part.splits == 1) {
        out[ptrdiff_t(t) * a.out_token + ptrdiff_t(head) * a.out_head + dim] = from_float<T>(value);
        return;
    }
    const size_t row = (size_t(t) * a.nh + head) * part.splits + blockIdx.z;
    part.o[row * a.dv + dim] = value;
    if (dim == 0) {
        part.m[row] = m_ln;
        part.l[row] = sum;
    }
}

constexpr int kFlashRows = 64; // query tokens per block
constexpr int kFlashKeys = 64; // keys per shared-memory stage
constexpr int kFlashWarps = kFlashRows / 16;
constexpr int kFlashMaxRuns = 4;
constexpr int kFlashMinTokens = 16;
constexpr int kFlashMaxGroup = 16; // query heads per KV head that the decode kernel takes

// Bit i of runs: token t0 + i starts a run (its key list differs from its predecessor's).
// True when the flash kernel takes the tile of count tokens from t0. Called by every lane
// of a warp.
template <typename KeyAddr>
__device__ __forceinline__ bool flash_takes_tile(const KeyAddr &keys, int t0, int count,
                                                 uint64_t &runs) {
    runs = 0;
    if (count < kFlashMinTokens) return false;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int i = half * 32 + lane;
        const bool starts = i < count && (i == 0 || keys.list(t0 + i) != keys.list(t0 + i - 1));
        runs |= uint64_t(__ballot_sync(0xffffffffu, starts)) << (32 * half);
    }
    return __popcll(runs) <= kFlashMaxRuns;
}

template <typename KeyAddr>
__device__ __forceinline__ bool flash_takes_token(const KeyAddr &keys, int n, int t) {
    const int t0 = t / kFlashRows * kFlashRows;
    uint64_t runs;
    return flash_takes_tile(keys, t0, min(kFlashRows, n - t0), runs);
}

namespace flash {

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return uint32_t(__cvta_generic_to_shared(p));
}

// Byte offset of 16-byte chunk c of row r in a tile of D-element rows; the chunk index is
// XORed with the row so that the 8 rows an ldmatrix reads fall in different banks.
template <int D> __device__ __forceinline__ uint32_t swizzle(int r, int c) {
    return uint32_t(r * (D / 8) + (c ^ (r & 7))) * 16;
}

// 16 bytes global -> shared, zero-filled when !valid (src must still be a mapped address).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int Pending> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

template <bool Trans> __device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    if constexpr (Trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
}

// d += a b: a 16x16 row-major, b 16x8 column-major, d 16x8 f32.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as the low and high halves of a 32-bit pair of T.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<const uint32_t *>(&h);
    } else {
        const __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<const uint32_t *>(&h);
    }
}

__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Index of the lowest set bit of bits at or above i, or end when none.
__device__ __forceinline__ int next_bit(uint64_t bits, int i, int end) {
    const uint64_t above = i < 64 ? bits >> i : 0;
    return above ? i + __ffsll(static_cast<long long>(above)) - 1 : end;
}

// Shared memory of a block: a query tile of Rows rows and two stages of K and V tiles.
template <int D, int Rows> __host__ __device__ constexpr int smem_bytes() {
    return (Rows + 4 * kFlashKeys) * D * 2;
}

// Running softmax (log2 domain) and unnormalised output of a warp's 16 query rows; a
// thread holds rows g and g + 8 (g = lane / 4), columns 2c, 2c + 1 (c = lane % 4) of every
// 8-wide tile of the output.
template <int D> struct RowState {
    float o[D / 8][4] = {};
    float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f;
};

// The A fragments of a warp's 16 query rows from row0 of a shared query tile.
template <int D>
__device__ __forceinline__ void load_query(uint32_t (&qf)[D / 16][4], uint32_t q_s, int row0) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
        ldmatrix_x4<false>(qf[ks], q_s + swizzle<D>(row0 + (lane & 15), 2 * ks + (lane >> 4)));
}

// Copies keys kb..kb+kFlashKeys-1 of token t's list into a K and a V stage as one cp.async
// group (zeros from key_end on); only the rows of keys from..to-1 when given (the rest of
// the stage is another group's); every thread of the block takes part.
template <int D, typename T, typename KeyAddr>
__device__ __forceinline__ void load_keys(uint32_t k_stage, uint32_t v_stage, const T *k,
                                          const T *v, const KeyAddr &keys, const AttentionDims &a,
                                          int kv_head, int t, int kb, int key_end, int from = 0,
                                          int to = INT_MAX) {
    constexpr int kChunks = D / 8, kThreads = kFlashWarps * 32; // both kernels' block size
    static_assert(kThreads % kChunks == 0);
    // A thread keeps one 16-byte chunk of every kThreads / kChunks-th row: the per-row
    // address math is done once a row.
    const int chunk = threadIdx.x % kChunks;
    const T *kh = k + ptrdiff_t(kv_head) * a.k_head + chunk * 8;
    const T *vh = v + ptrdiff_t(kv_head) * a.v_head + chunk * 8;
    for (int r = threadIdx.x / kChunks; r < kFlashKeys; r += kThreads / kChunks) {
        const int j = kb + r;
        if (j < from || j >= to) continue;
        const bool valid = j < key_end;
        const ptrdiff_t kr = valid ? keys.k_row(t, j) : 0, vr = valid ? keys.v_row(t, j) : 0;
        const uint32_t at = swizzle<D>(r, chunk);
        cp_async_16(k_stage + at, kh + kr, valid);
        cp_async_16(v_stage + at, vh + vr, valid);
    }
    cp_async_commit();
}

// A warp adds keys first..first+8*KeyTiles-1 of the shared K/V stages (key index kb + their
// row) to its rows; with masked, row x sees only keys below its limit (lim_lo / lim_hi).
template <int D, int KeyTiles, typename T>
__device__ __forceinline__ void attend(RowState<D> &st, const uint32_t (&qf)[D / 16][4],
                                       uint32_t k_stage, uint32_t v_stage, int first, int kb,
                                       bool masked, int lim_lo, int lim_hi, float scale) {
    const int lane = threadIdx.x & 31, c = lane & 3;
    float s[KeyTiles][4] = {};
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
        for (int np = 0; np < KeyTiles / 2; ++np) {
            uint32_t b[4];
            ldmatrix_x4<false>(b, k_stage +
                                      swizzle<D>(first + np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                                 2 * ks + ((lane >> 3) & 1)));
            mma_16816<T>(s[2 * np], qf[ks], b[0], b[1]);
            mma_16816<T>(s[2 * np + 1], qf[ks], b[2], b[3]);
        }
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < KeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int key = kb + first + nt * 8 + 2 * c + (e & 1);
            const bool hidden = masked && key >= (e < 2 ? lim_lo : lim_hi);
            s[nt][e] = hidden ? -INFINITY : s[nt][e] * scale;
            if (e < 2)
                mx_lo = fmaxf(mx_lo, s[nt][e]);
            else
                mx_hi = fmaxf(mx_hi, s[nt][e]);
        }
    const float new_lo = fmaxf(st.m_lo, quad_max(mx_lo));
    const float new_hi = fmaxf(st.m_hi, quad_max(mx_hi));
    // A row that has seen no key yet keeps m = -inf: measure from 0 instead.
    const float base_lo = new_lo == -INFINITY ? 0.0f : new_lo;
    const float base_hi = new_hi == -INFINITY ? 0.0f : new_hi;
    const float corr_lo = exp2f(st.m_lo - base_lo), corr_hi = exp2f(st.m_hi - base_hi);
    st.m_lo = new_lo;
    st.m_hi = new_hi;
    st.l_lo *= corr_lo;
    st.l_hi *= corr_hi;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
        st.o[dt][0] *= corr_lo;
        st.o[dt][1] *= corr_lo;
        st.o[dt][2] *= corr_hi;
        st.o[dt][3] *= corr_hi;
    }
#pragma unroll
    for (int nt = 0; nt < KeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            s[nt][e] = exp2f(s[nt][e] - (e < 2 ? base_lo : base_hi));
            (e < 2 ? st.l_lo : st.l_hi) += s[nt][e];
        }
    // The S accumulators of key tiles 2kk and 2kk + 1 are the A fragment of P for keys
    // 16kk..16kk+15.
#pragma unroll
    for (int kk = 0; kk < KeyTiles / 2; ++kk) {
        const uint32_t p[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                               pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                               pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
            uint32_t b[4];
            ldmatrix_x4<true>(
                b, v_stage + swizzle<D>(first + kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3),
                                        2 * dp + (lane >> 4)));
            mma_16816<T>(st.o[2 * dp], p, b[0], b[1]);
            mma_16816<T>(st.o[2 * dp + 1], p, b[2], b[3]);
        }
    }
}

} // namespace flash

// Grid: x = query head, y = tile of kFlashRows query tokens, the last tile first: a
// sequence's tiles start longest first and the short ones fill the tail, and the query
// heads of one KV head run side by side while its keys are in L2.
template <int D, typename T, typename KeyAddr>
__global__ void __launch_bounds__(kFlashWarps * 32, 2)
    flash_attention_kernel(T *out, const T *q, const T *k, const T *v, AttentionDims a,
                           KeyAddr keys) {
    static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>);
    using namespace flash;
    constexpr uint32_t kTileBytes = kFlashKeys * D * 2;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t q_s = smem_addr(smem), k_s = q_s + kFlashRows * D * 2,
                   v_s = k_s + 2 * kTileBytes;
    wait_for_prior_grid();
    allow_dependents_early();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
    const int t0 = int(gridDim.y - 1 - blockIdx.y) * kFlashRows, head = blockIdx.x;
    const int kv_head = head / (a.nh / a.nkvh);
    const int count = min(kFlashRows, a.n - t0);
    uint64_t runs;
    if (!flash_takes_tile(keys, t0, count, runs)) return;

    for (int i = threadIdx.x; i < kFlashRows * (D / 8); i += blockDim.x) {
        const int r = i / (D / 8), chunk = i % (D / 8);
        const T *src = q + ptrdiff_t(t0 + min(r, count - 1)) * a.q_token +
                       ptrdiff_t(head) * a.q_head + chunk * 8;
        cp_async_16(q_s + swizzle<D>(r, chunk), src, r < count);
    }
    cp_async_commit();

    const int row_lo = warp * 16 + g, row_hi = row_lo + 8;
    const float scale = a.scale * 1.4426950408889634f; // exp2 instead of exp
    uint32_t qf[D / 16][4];
    RowState<D> st;
    bool q_loaded = false;

    for (int rs = 0; rs < count;) {
        const int re = next_bit(runs, rs + 1, count), t_run = t0 + rs;
        // Keys of the run's list that its tokens read: all warps reduce the same values.
        int key_end = 0;
        for (int i = lane; i < re - rs; i += 32) key_end = max(key_end, keys.n_keys(t_run + i));
        key_end = __reduce_max_sync(0xffffffffu, key_end);
        const int lim_lo = row_lo >= rs && row_lo < re ? keys.n_keys(t0 + row_lo) : 0;
        const int lim_hi = row_hi >= rs && row_hi < re ? keys.n_keys(t0 + row_hi) : 0;
        const int warp_min = __reduce_min_sync(0xffffffffu, min(lim_lo, lim_hi));
        const int warp_max = __reduce_max_sync(0xffffffffu, max(lim_lo, lim_hi));

        const int tiles = (key_end + kFlashKeys - 1) / kFlashKeys;
        load_keys<D>(k_s, v_s, k, v, keys, a, kv_head, t_run, 0, key_end);
        if (!q_loaded) { // the query group was committed before the first K/V group
            cp_async_wait<1>();
            __syncthreads();
            load_query<D>(qf, q_s, warp * 16);
            q_loaded = true;
        }
        for (int it = 0; it < tiles; ++it) {
            const uint32_t stage = (it & 1) * kTileBytes, next = kTileBytes - stage;
            if (it + 1 < tiles) {
                load_keys<D>(k_s + next, v_s + next, k, v, keys, a, kv_head, t_run,
                             (it + 1) * kFlashKeys, key_end);
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads();
            const int kb = it * kFlashKeys;
            if (kb < warp_max) // else every row of this warp has seen all its keys
                attend<D, kFlashKeys / 8, T>(st, qf, k_s + stage, v_s + stage, 0, kb,
                                             kb + kFlashKeys > warp_min, lim_lo, lim_hi, scale);
            __syncthreads(); // the stage is overwritten by the load two tiles on
        }
        rs = re;
    }

    const float l_lo = quad_sum(st.l_lo), l_hi = quad_sum(st.l_hi);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int r = half ? row_hi : row_lo;
        const float l = half ? l_hi : l_lo;
        if (r >= count || l <= 0.0f) continue;
        T *dst = out + ptrdiff_t(t0 + r) * a.out_token + ptrdiff_t(head) * a.out_head + 2 * c;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
            *reinterpret_cast<uint32_t *>(dst + dt * 8) =
                pack2<T>(st.o[dt][2 * half] / l, st.o[dt][2 * half + 1] / l);
    }
}

// Grid: x = a stride over the query tokens (all of a decode batch, fewer blocks than tokens
// for a prefill, whose tokens are mostly skipped), y = KV head (its group of query heads are
// the rows), z = split of each token's keys as in attention_kernel. With flash, tokens of
// the tiles the prefill kernel takes are skipped. settled: every token is its list's only
// query (a decode step), so its keys but its own were written by earlier steps and the
// block's first tile of them is copied before the wait for the kernel before (which writes
// the token's own key), overlapping it.
template <int D, typename T, typename KeyAddr>
__global__ void __launch_bounds__(kFlashWarps * 32)
    flash_decode_kernel(T *out, const T *q, const T *k, const T *v, AttentionDims a, KeyAddr keys,
                        SplitOut part, bool flash, bool settled) {
    static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>);
    using namespace flash;
    constexpr uint32_t kTileBytes = kFlashKeys * D * 2;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t q_s = smem_addr(smem), k_s = q_s + 16 * D * 2, v_s = k_s + 2 * kTileBytes;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
    const int kv_head = blockIdx.y, group = a.nh / a.nkvh, h0 = kv_head * group;
    auto split_of = [&](int t, int &j0, int &j1) {
        const int n_keys = keys.n_keys(t);
        const int per_split = (n_keys + int(gridDim.z) - 1) / int(gridDim.z);
        j0 = blockIdx.z * per_split;
        j1 = min(n_keys, j0 + per_split);
    };
    // Keys j0..fetched-1 of the first token's first tile were copied before the wait (none
    // when fetched <= j0): its first load after the wait starts at fetched.
    int fetched = 0;
    if (settled) {
        int j0, j1;
        split_of(blockIdx.x, j0, j1);
        fetched = max(j0, min(min(j1, keys.n_keys(blockIdx.x) - 1), j0 + kFlashKeys));
        load_keys<D>(k_s, v_s, k, v, keys, a, kv_head, blockIdx.x, j0, fetched, j0, fetched);
    }
    wait_for_prior_grid();
    allow_dependents_early();
    for (int t = blockIdx.x; t < a.n; t += gridDim.x) {
        if (flash && flash_takes_token(keys, a.n, t)) continue;
        int j0, j1;
        split_of(t, j0, j1);

        for (int i = threadIdx.x; i < 16 * (D / 8); i += blockDim.x) {
            const int r = i / (D / 8), chunk = i % (D / 8);
            const T *src = q + ptrdiff_t(t) * a.q_token +
                           ptrdiff_t(h0 + min(r, group - 1)) * a.q_head + chunk * 8;
            cp_async_16(q_s + swizzle<D>(r, chunk), src, r < group);
        }
        cp_async_commit();
        const int tiles = j1 > j0 ? (j1 - j0 + kFlashKeys - 1) / kFlashKeys : 0;
        if (tiles > 0) {
            load_keys<D>(k_s, v_s, k, v, keys, a, kv_head, t, j0, j1,
                         t == int(blockIdx.x) ? fetched : j0);
            cp_async_wait<1>(); // the query group; the first K/V group may still be in flight
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        uint32_t qf[D / 16][4];
        load_query<D>(qf, q_s, 0);

        const float scale = a.scale * 1.4426950408889634f;
        RowState<D> st;
        for (int it = 0; it < tiles; ++it) {
            const uint32_t stage = (it & 1) * kTileBytes, next = kTileBytes - stage;
            const int kb = j0 + it * kFlashKeys;
            if (it + 1 < tiles) {
                load_keys<D>(k_s + next, v_s + next, k, v, keys, a, kv_head, t, kb + kFlashKeys,
                             j1);
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads();
            if (kb + warp * 16 < j1)
                attend<D, 2, T>(st, qf, k_s + stage, v_s + stage, warp * 16, kb,
                                kb + kFlashKeys > j1, j1, j1, scale);
            __syncthreads();
        }

        // Merge the warps' softmaxes through shared memory (the K/V stages are free now): a
        // thread a row takes the row's max, sum and each warp's weight, then every output is
        // kFlashWarps loads and multiply-adds. Rows of o_s are kOPitch floats apart and
        // written as pairs, so a warp's store of its 8 rows x 4 pairs hits each bank once a
        // wavefront (a pitch of D put all 8 rows in one bank); rows past the group are
        // padding and not stored.
        constexpr int kOPitch = D + 8;
        float *m_s = reinterpret_cast<float *>(smem + 16 * D * 2); // [kFlashWarps][16]
        float *l_s = m_s + kFlashWarps * 16;                       // [kFlashWarps][16]
        float *w_s = l_s + kFlashWarps * 16;                       // [kFlashWarps][16]
        float *sum_s = w_s + kFlashWarps * 16, *mx_s = sum_s + 16; // [16] each
        float *o_s = mx_s + 16;                                    // [kFlashWarps][16][kOPitch]
        static_assert(16 * D * 2 + (kFlashWarps * 16 * (3 + kOPitch) + 32) * 4 <=
                      smem_bytes<D, 16>());
        const float l_lo = quad_sum(st.l_lo), l_hi = quad_sum(st.l_hi);
        if (c == 0) {
            m_s[warp * 16 + g] = st.m_lo;
            m_s[warp * 16 + g + 8] = st.m_hi;
            l_s[warp * 16 + g] = l_lo;
            l_s[warp * 16 + g + 8] = l_hi;
        }
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int r = g + 8 * half;
            if (r >= group) continue;
            float2 *row = reinterpret_cast<float2 *>(o_s + (warp * 16 + r) * kOPitch + 2 * c);
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt)
                row[dt * 4] = make_float2(st.o[dt][2 * half], st.o[dt][2 * half + 1]);
        }
        __syncthreads();
        static_assert(kFlashMaxGroup <= kFlashWarps * 32); // a thread for every row
        if (threadIdx.x < group) {
            const int r = threadIdx.x;
            float mx = -INFINITY, sum = 0.0f;
#pragma unroll
            for (int w = 0; w < kFlashWarps; ++w)
                if (l_s[w * 16 + r] > 0.0f) mx = fmaxf(mx, m_s[w * 16 + r]);
#pragma unroll
            for (int w = 0; w < kFlashWarps; ++w) { // empty warps (no keys) weigh 0
                const float l = l_s[w * 16 + r], f = l > 0.0f ? exp2f(m_s[w * 16 + r] - mx) : 0.0f;
                w_s[w * 16 + r] = f;
                sum += l * f;
            }
            sum_s[r] = sum;
            mx_s[r] = mx;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
            const int r = i / D, dim = i % D;
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < kFlashWarps; ++w)
                o += o_s[(w * 16 + r) * kOPitch + dim] * w_s[w * 16 + r];
            // Scores here are in log2 units; the merge works in natural logs.
            write_head_output(out, a, part, t, h0 + r, dim, o, sum_s[r],
                              mx_s[r] * 0.6931471805599453f);
        }
        __syncthreads(); // the next token's loads overwrite the merge's shared memory
    }
}

// True when the flash kernel (bf16/f16) serves these operands: d == dv of 64 or 128, and
// every row it copies starts on a 16-byte boundary (outputs on 4 bytes).
template <typename T, typename KeyAddr>
bool flash_fits(const T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
                const KeyAddr &keys) {
    const auto aligned = [](const void *p, size_t bytes) {
        return reinterpret_cast<uintptr_t>(p) % bytes == 0;
    };
    return (a.d == 64 || a.d == 128) && a.dv == a.d && a.q_token % 8 == 0 && a.q_head % 8 == 0 &&
           a.k_head % 8 == 0 && a.v_head % 8 == 0 && keys.k_pitch() % 8 == 0 &&
           keys.v_pitch() % 8 == 0 && a.out_token % 2 == 0 && a.out_head % 2 == 0 &&
           aligned(q, 16) && aligned(k, 16) && aligned(v, 16) && aligned(out, 4);
}

// Lets kernel take bytes of dynamic shared memory (above the default 48 KB).
template <typename Kernel> void allow_shared_memory(Kernel kernel, int bytes) {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
               "flash attention shared memory");
}

// Launches the prefill kernel over every tile of a.n tokens; the operands passed flash_fits.
template <typename T, typename KeyAddr>
void flash_attention(T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
                     const KeyAddr &keys) {
    const dim3 grid(unsigned(a.nh), unsigned((a.n + kFlashRows - 1) / kFlashRows));
    auto launch = [&](auto kernel, int bytes) {
        allow_shared_memory(kernel, bytes);
        launch_dependent("flash attention", kernel, grid, kFlashWarps * 32, bytes, out, q, k, v, a,
                         keys);
    };
    if (a.d == 64)
        launch(flash_attention_kernel<64, T, KeyAddr>, flash::smem_bytes<64, kFlashRows>());
    else
        launch(flash_attention_kernel<128, T, KeyAddr>, flash::smem_bytes<128, kFlashRows>());
}

// Blocks of the decode kernel the GPU holds at once (its two K/V stages of shared memory
// allow few per SM): the keys are split only as far as all blocks stay resident
// (decode_splits), since every split costs its partial results and their merge. Taken once
// per kernel (one device kind).
template <typename T, typename KeyAddr> int flash_decode_resident_blocks(int d) {
    auto query = [](auto kernel, int bytes) {
        allow_shared_memory(kernel, bytes);
        int per_sm = 0, device = 0, sms = 0;
        check_cuda(
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kFlashWarps * 32, bytes),
            "flash decode occupancy");
        check_cuda(cudaGetDevice(&device), "cudaGetDevice");
        check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                   "cudaDeviceGetAttribute");
        return std::max(1, per_sm * sms);
    };
    if (d == 64) {
        static const int blocks =
            query(flash_decode_kernel<64, T, KeyAddr>, flash::smem_bytes<64, 16>());
        return blocks;
    }
    static const int blocks =
        query(flash_decode_kernel<128, T, KeyAddr>, flash::smem_bytes<128, 16>());
    return blocks;
}

// Launches the decode kernel on grid (token stride, KV heads, splits); the operands passed
// flash_fits and a KV head has at most kFlashMaxGroup query heads.
template <typename T, typename KeyAddr>
void flash_decode(T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
                  const KeyAddr &keys, const SplitOut &part, bool flash, bool settled, dim3 grid) {
    auto launch = [&](auto kernel, int bytes) {
        allow_shared_memory(kernel, bytes);
        launch_dependent("flash decode attention", kernel, grid, kFlashWarps * 32, bytes, out, q, k,
                         v, a, keys, part, flash, settled);
    };
    if (a.d == 64)
        launch(flash_decode_kernel<64, T, KeyAddr>, flash::smem_bytes<64, 16>());
    else
        launch(flash_decode_kernel<128, T, KeyAddr>, flash::smem_bytes<128, 16>());
}

} // namespace llaisys::ops::nvidia
