// Causal attention of tiles of query tokens on the tensor cores (flash-attention 2), for
// bf16/f16 heads of 64 or 128 dims. A block of kFlashWarps warps takes kFlashRows
// consecutive query tokens of one head, 16 rows per warp; it streams the keys of their KV
// head through shared memory kFlashKeys at a time (cp.async, two stages) and keeps each
// row's running softmax and output in registers (mma.sync m16n8k16, f32 accumulate).
//
// A tile's tokens may come from up to kFlashMaxRuns runs of consecutive tokens that share
// one key list (the tail of one sequence and the head of the next in a batch): the block
// walks each run's keys with the rows of the other runs masked out. A token sees keys
// 0..n_keys(t)-1 of its list, so causality and a cached prefix come from n_keys alone.
// Tiles of fewer than kFlashMinTokens tokens or of more runs (decode batches: one token a
// sequence) are left to the per-token kernel, which skips the tiles taken here.
#pragma once

#include "device/nvidia/nvidia_common.cuh"

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

constexpr int kFlashRows = 64; // query tokens per block
constexpr int kFlashKeys = 64; // keys per shared-memory stage
constexpr int kFlashWarps = kFlashRows / 16;
constexpr int kFlashMaxRuns = 4;
constexpr int kFlashMinTokens = 16;

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

// Shared memory of a block: the query tile and two stages of K and V tiles.
template <int D> constexpr int smem_bytes() { return (kFlashRows + 4 * kFlashKeys) * D * 2; }

} // namespace flash

// Grid: x = query head, y = tile of kFlashRows query tokens, the last tile first: a
// sequence's tiles start longest first and the short ones fill the tail, and the query
// heads of one KV head run side by side while its keys are in L2.
// Thread layout of the mma fragments (g = lane / 4, c = lane % 4): a warp's accumulators
// hold rows g and g + 8 of its 16 rows, columns 2c and 2c + 1 of every 8-wide n tile.
template <int D, typename T, typename KeyAddr>
__global__ void __launch_bounds__(kFlashWarps * 32, 2)
    flash_attention_kernel(T *out, const T *q, const T *k, const T *v, AttentionDims a,
                           KeyAddr keys) {
    static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>);
    using namespace flash;
    constexpr int kChunks = D / 8, kDimTiles = D / 8, kKeyTiles = kFlashKeys / 8;
    constexpr uint32_t kTileBytes = kFlashKeys * D * 2;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t q_s = smem_addr(smem), k_s = q_s + kFlashRows * D * 2,
                   v_s = k_s + 2 * kTileBytes;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
    const int t0 = int(gridDim.y - 1 - blockIdx.y) * kFlashRows, head = blockIdx.x;
    const int kv_head = head / (a.nh / a.nkvh);
    const int count = min(kFlashRows, a.n - t0);
    uint64_t runs;
    if (!flash_takes_tile(keys, t0, count, runs)) return;

    for (int i = threadIdx.x; i < kFlashRows * kChunks; i += blockDim.x) {
        const int r = i / kChunks, chunk = i % kChunks;
        const T *src = q + ptrdiff_t(t0 + min(r, count - 1)) * a.q_token +
                       ptrdiff_t(head) * a.q_head + chunk * 8;
        cp_async_16(q_s + swizzle<D>(r, chunk), src, r < count);
    }
    cp_async_commit();

    const int row_lo = warp * 16 + g, row_hi = row_lo + 8;
    const float scale = a.scale * 1.4426950408889634f; // exp2 instead of exp
    uint32_t qf[D / 16][4];
    float o[kDimTiles][4] = {}, m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f;
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

        auto load_kv = [&](int stage, int kb) {
            for (int i = threadIdx.x; i < kFlashKeys * kChunks; i += blockDim.x) {
                const int r = i / kChunks, chunk = i % kChunks, j = kb + r;
                const bool valid = j < key_end;
                const ptrdiff_t kr = valid ? keys.k_row(t_run, j) : 0;
                const ptrdiff_t vr = valid ? keys.v_row(t_run, j) : 0;
                const uint32_t at = stage * kTileBytes + swizzle<D>(r, chunk);
                cp_async_16(k_s + at, k + kr + ptrdiff_t(kv_head) * a.k_head + chunk * 8, valid);
                cp_async_16(v_s + at, v + vr + ptrdiff_t(kv_head) * a.v_head + chunk * 8, valid);
            }
            cp_async_commit();
        };

        const int tiles = (key_end + kFlashKeys - 1) / kFlashKeys;
        load_kv(0, 0);
        if (!q_loaded) { // the query group was committed before the first K/V group
            cp_async_wait<1>();
            __syncthreads();
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks)
                ldmatrix_x4<false>(qf[ks],
                                   q_s + swizzle<D>(warp * 16 + (lane & 15), 2 * ks + (lane >> 4)));
            q_loaded = true;
        }
        for (int it = 0; it < tiles; ++it) {
            if (it + 1 < tiles) {
                load_kv((it + 1) & 1, (it + 1) * kFlashKeys);
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads();
            const int kb = it * kFlashKeys;
            if (kb < warp_max) { // else every row of this warp has seen all its keys
                const uint32_t ks_base = k_s + (it & 1) * kTileBytes;
                const uint32_t vs_base = v_s + (it & 1) * kTileBytes;
                float s[kKeyTiles][4] = {};
#pragma unroll
                for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
                    for (int np = 0; np < kKeyTiles / 2; ++np) {
                        uint32_t b[4];
                        ldmatrix_x4<false>(
                            b, ks_base + swizzle<D>(np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                                    2 * ks + ((lane >> 3) & 1)));
                        mma_16816<T>(s[2 * np], qf[ks], b[0], b[1]);
                        mma_16816<T>(s[2 * np + 1], qf[ks], b[2], b[3]);
                    }
                const bool masked = kb + kFlashKeys > warp_min;
                float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
                for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = kb + nt * 8 + 2 * c + (e & 1);
                        const bool hidden = masked && key >= (e < 2 ? lim_lo : lim_hi);
                        s[nt][e] = hidden ? -INFINITY : s[nt][e] * scale;
                        if (e < 2)
                            mx_lo = fmaxf(mx_lo, s[nt][e]);
                        else
                            mx_hi = fmaxf(mx_hi, s[nt][e]);
                    }
                const float new_lo = fmaxf(m_lo, quad_max(mx_lo));
                const float new_hi = fmaxf(m_hi, quad_max(mx_hi));
                // A row that has seen no key yet keeps m = -inf: measure from 0 instead.
                const float base_lo = new_lo == -INFINITY ? 0.0f : new_lo;
                const float base_hi = new_hi == -INFINITY ? 0.0f : new_hi;
                const float corr_lo = exp2f(m_lo - base_lo), corr_hi = exp2f(m_hi - base_hi);
                m_lo = new_lo;
                m_hi = new_hi;
                l_lo *= corr_lo;
                l_hi *= corr_hi;
#pragma unroll
                for (int dt = 0; dt < kDimTiles; ++dt) {
                    o[dt][0] *= corr_lo;
                    o[dt][1] *= corr_lo;
                    o[dt][2] *= corr_hi;
                    o[dt][3] *= corr_hi;
                }
#pragma unroll
                for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        s[nt][e] = exp2f(s[nt][e] - (e < 2 ? base_lo : base_hi));
                        (e < 2 ? l_lo : l_hi) += s[nt][e];
                    }
                // The S accumulators of key tiles 2kk and 2kk + 1 are the A fragment of P
                // for keys 16kk..16kk+15.
#pragma unroll
                for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
                    const uint32_t p[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                                           pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                           pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                           pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
                    for (int dp = 0; dp < kDimTiles / 2; ++dp) {
                        uint32_t b[4];
                        ldmatrix_x4<true>(
                            b, vs_base + swizzle<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3),
                                                    2 * dp + (lane >> 4)));
                        mma_16816<T>(o[2 * dp], p, b[0], b[1]);
                        mma_16816<T>(o[2 * dp + 1], p, b[2], b[3]);
                    }
                }
            }
            __syncthreads(); // the stage is overwritten by the load two tiles on
        }
        rs = re;
    }

    l_lo = quad_sum(l_lo);
    l_hi = quad_sum(l_hi);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int r = half ? row_hi : row_lo;
        const float l = half ? l_hi : l_lo;
        if (r >= count || l <= 0.0f) continue;
        T *dst = out + ptrdiff_t(t0 + r) * a.out_token + ptrdiff_t(head) * a.out_head + 2 * c;
#pragma unroll
        for (int dt = 0; dt < kDimTiles; ++dt)
            *reinterpret_cast<uint32_t *>(dst + dt * 8) =
                pack2<T>(o[dt][2 * half] / l, o[dt][2 * half + 1] / l);
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

// Launches the flash kernel over every tile of a.n tokens (a.n >= kFlashMinTokens); the
// operands passed flash_fits.
template <typename T, typename KeyAddr>
void flash_attention(T *out, const T *q, const T *k, const T *v, const AttentionDims &a,
                     const KeyAddr &keys) {
    auto launch = [&](auto kernel, int bytes) {
        check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
                   "flash attention shared memory");
        const dim3 grid(unsigned(a.nh), unsigned((a.n + kFlashRows - 1) / kFlashRows));
        kernel<<<grid, kFlashWarps * 32, bytes, stream()>>>(out, q, k, v, a, keys);
        check_launch("flash attention");
    };
    if (a.d == 64)
        launch(flash_attention_kernel<64, T, KeyAddr>, flash::smem_bytes<64>());
    else
        launch(flash_attention_kernel<128, T, KeyAddr>, flash::smem_bytes<128>());
}

} // namespace llaisys::ops::nvidia
