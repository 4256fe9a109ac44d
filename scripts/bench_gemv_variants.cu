// GEMV variants on the DeepSeek-R1-Distill-Qwen-1.5B decode shapes (bf16, cold L2: the weights
// rotate over 1 GB), for choosing linear_nvidia.cu's loads per round and double buffering:
//   nvcc -O3 -std=c++17 -arch=sm_90 scripts/bench_gemv_variants.cu -o /tmp/gemv && /tmp/gemv
// Back-to-back launches without dependent launches: compare variants, not absolute times.
#include <algorithm>
#include <cstdio>
#include <cuda_bf16.h>
#include <vector>

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ void unpack(const uint4 &v, float (&f)[8]) {
    const __nv_bfloat162 *p = reinterpret_cast<const __nv_bfloat162 *>(&v);
    for (int i = 0; i < 4; ++i) {
        float2 t = __bfloat1622float2(p[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

// WARPS warps a block; a column's k split over `slices` warps; LOADS 16-byte loads per lane a
// round; DB: next round in flight while this one is dotted.
template <int WARPS, int LOADS, bool DB, int M = 1>
__global__ void __launch_bounds__(WARPS * 32) gemv(const __nv_bfloat16 *w, const __nv_bfloat16 *x,
                                                   __nv_bfloat16 *out, int n, int k, int slices) {
    constexpr int V = 8;
    __shared__ float partial[WARPS][M];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col = blockIdx.x * (WARPS / slices) + warp / slices, slice = warp % slices;
    const bool active = col < n;
    const __nv_bfloat16 *wr = w + size_t(col) * k;
    const int step = 32 * V * slices, round = LOADS * step;
    int base = (slice * 32 + lane) * V;
    float acc[M] = {};
    uint4 next[LOADS];
    auto load_round = [&](int at) {
#pragma unroll
        for (int u = 0; u < LOADS; ++u)
            if (active && at + u * step < k)
                next[u] = __ldcs(reinterpret_cast<const uint4 *>(wr + at + u * step));
    };
    if (DB) load_round(base);
    for (; active && base < k; base += round) {
        uint4 wv[LOADS];
        if (!DB) load_round(base);
#pragma unroll
        for (int u = 0; u < LOADS; ++u) wv[u] = next[u];
        if (DB && base + round < k) load_round(base + round);
#pragma unroll
        for (int u = 0; u < LOADS; ++u) {
            const int e0 = base + u * step;
            if (e0 >= k) break;
            float wf[V], xf[V];
            unpack(wv[u], wf);
#pragma unroll
            for (int r = 0; r < M; ++r) {
                unpack(__ldg(reinterpret_cast<const uint4 *>(x + r * k + e0)), xf);
#pragma unroll
                for (int e = 0; e < V; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < M; ++r) acc[r] = warp_sum(acc[r]);
    if (lane == 0)
        for (int r = 0; r < M; ++r) partial[warp][r] = acc[r];
    __syncthreads();
    if (slice != 0 || lane >= M || !active) return;
    float sum = 0.f;
    for (int s = 0; s < slices; ++s) sum += partial[warp + s][lane];
    out[lane * n + col] = __float2bfloat16(sum);
}

struct Shape {
    const char *name;
    int n, k;
};

int main() {
    const Shape shapes[] = {{"qkv", 2048, 1536},
                            {"o", 1536, 1536},
                            {"gate_up", 17920, 1536},
                            {"down", 1536, 8960},
                            {"lm_head", 151936, 1536}};
    const size_t pool = size_t(1) << 30; // 1 GB of weights to rotate over
    __nv_bfloat16 *w, *x, *out;
    cudaMalloc(&w, pool);
    cudaMalloc(&x, 1 << 20);
    cudaMalloc(&out, 1 << 24);
    cudaMemset(w, 0, pool);
    cudaMemset(x, 0, 1 << 20);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    int dev;
    cudaGetDevice(&dev);
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    for (const Shape &s : shapes) {
        const size_t bytes = size_t(s.n) * s.k * 2;
        const int copies = std::max<size_t>(1, std::min<size_t>(pool / bytes, 64));
        printf("%-8s n=%6d k=%5d  %.1f MB  floor %.2f us @4.25TB/s\n", s.name, s.n, s.k,
               bytes / 1e6, bytes / 4.25e6);
        auto run = [&](const char *label, auto kernel, int warps, int slices) {
            if (s.k < slices * 256) return;
            int per_sm = 0;
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, warps * 32, 0);
            const int cols_per_block = warps / slices;
            const unsigned grid = (s.n + cols_per_block - 1) / cols_per_block;
            const int iters = 200;
            for (int i = 0; i < 10; ++i)
                kernel<<<grid, warps * 32>>>(w + (i % copies) * (bytes / 2), x, out, s.n, s.k,
                                             slices);
            cudaEventRecord(e0);
            for (int i = 0; i < iters; ++i)
                kernel<<<grid, warps * 32>>>(w + (i % copies) * (bytes / 2), x, out, s.n, s.k,
                                             slices);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            const double us = ms * 1000 / iters;
            printf(
                "  %-14s slices %d  grid %6u (%.2f waves, %d/SM)  %7.2f us  %5.0f GB/s  %3.0f%%\n",
                label, slices, grid, double(grid) / (per_sm * sms), per_sm, us, bytes / us / 1e3,
                bytes / us / 1e3 / 42.5);
        };
        for (int slices : {1, 2, 4, 8}) {
            run("M1 L4 db", gemv<8, 4, true, 1>, 8, slices);
            run("M1 L8 nodb", gemv<8, 8, false, 1>, 8, slices);
            run("M4 L4 db", gemv<8, 4, true, 4>, 8, slices);
            run("M4 L8 nodb", gemv<8, 8, false, 4>, 8, slices);
            run("M8 L4 db", gemv<8, 4, true, 8>, 8, slices);
            run("M8 L8 nodb", gemv<8, 8, false, 8>, 8, slices);
            run("M8 L2 db", gemv<8, 2, true, 8>, 8, slices);
        }
    }
    cudaError_t err = cudaGetLastError();
    printf("%s\n", cudaGetErrorString(err));
}
