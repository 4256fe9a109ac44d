// The register-blocked kernels of linear, written once over a vector traits type V and
// instantiated by linear_generic.cpp, linear_avx2.cpp and linear_avx512.cpp.
//
// Everything here has internal linkage on purpose: an inline function with external linkage
// compiled into the AVX-512 object could be the copy the linker keeps for generic callers,
// which would then die with SIGILL on an older CPU. For the same reason this header calls no
// inline helper of the rest of the core; V supplies the f16 conversions.
//
// V provides: reg, width (floats per reg), mr (input rows per tile), zero(), load(const float *),
// store(float *, reg), fmadd(a, b, c) = a*b + c, hsum(reg), halves_to_f32(p, a, b) (two
// consecutive f16 values), tile_epilogue (whether
// store_tile<OutKind>(acc[4][4], bias, out, n) writes a whole 4 x 4 tile), half_to_f32(uint16_t),
// f32_to_half(float), and 32-element dequantizers writing 32 / width regs:
// f32x(const float *), bf16x(const uint16_t *), f16x(const uint16_t *),
// q8x(const int8_t *q, float d): d*q, q4x(const uint8_t *q, float d, float c): d*q + c with
// the low nibbles of the 16 bytes being elements 0..15 and the high nibbles 16..31.
#pragma once

#include "ops/linear/cpu/linear_cpu.hpp"

#include <cstdint>
#include <cstring>

namespace llaisys::ops::cpu {
namespace {

inline uint16_t load_u16(const std::byte *p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

inline float bf16_bits_to_f32(uint16_t b) {
    uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Round to nearest even with NaN kept quiet, as llaisys::f32_to_bf16 (see the note above).
inline uint16_t f32_to_bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

#if defined(__F16C__)
// Two consecutive halves (a Q4_1 block's d and m) in one conversion (AVX2 and AVX-512 units).
inline void f16c_halves(const std::byte *p, float &a, float &b) {
    uint32_t u;
    std::memcpy(&u, p, 4);
    const __m128 ab = _mm_cvtph_ps(_mm_cvtsi32_si128(int(u)));
    a = _mm_cvtss_f32(ab);
    b = _mm_cvtss_f32(_mm_movehdup_ps(ab));
}
#endif

enum class OutKind { F32, F16, BF16 };

// Weight formats. A chunk is 32 consecutive elements of one row (one quantized block);
// elem() reads one element of a float row for the k % 32 tail.
struct F32W {
    static constexpr OutKind out = OutKind::F32;
    static constexpr bool quantized = false;
    static constexpr size_t chunk_bytes = 128;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        V::f32x(reinterpret_cast<const float *>(p), w);
    }
    template <class V> static float elem(const std::byte *row, size_t j) {
        float v;
        std::memcpy(&v, row + 4 * j, 4);
        return v;
    }
};

struct BF16W {
    static constexpr OutKind out = OutKind::BF16;
    static constexpr bool quantized = false;
    static constexpr size_t chunk_bytes = 64;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        V::bf16x(reinterpret_cast<const uint16_t *>(p), w);
    }
    template <class V> static float elem(const std::byte *row, size_t j) {
        return bf16_bits_to_f32(load_u16(row + 2 * j));
    }
};

struct F16W {
    static constexpr OutKind out = OutKind::F16;
    static constexpr bool quantized = false;
    static constexpr size_t chunk_bytes = 64;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        V::f16x(reinterpret_cast<const uint16_t *>(p), w);
    }
    template <class V> static float elem(const std::byte *row, size_t j) {
        return V::half_to_f32(load_u16(row + 2 * j));
    }
};

struct Q8_0W { // f16 d, 32 x int8: y = d*q
    static constexpr OutKind out = OutKind::F32;
    static constexpr bool quantized = true;
    static constexpr size_t chunk_bytes = 34;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        V::q8x(reinterpret_cast<const int8_t *>(p + 2), V::half_to_f32(load_u16(p)), w);
    }
};

struct Q4_0W { // f16 d, 16 bytes of nibbles: y = d*(q - 8)
    static constexpr OutKind out = OutKind::F32;
    static constexpr bool quantized = true;
    static constexpr size_t chunk_bytes = 18;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        const float d = V::half_to_f32(load_u16(p));
        V::q4x(reinterpret_cast<const uint8_t *>(p + 2), d, -8.0f * d, w);
    }
};

struct Q4_1W { // f16 d, f16 m, 16 bytes of nibbles: y = d*q + m
    static constexpr OutKind out = OutKind::F32;
    static constexpr bool quantized = true;
    static constexpr size_t chunk_bytes = 20;
    template <class V> static void chunk(const std::byte *p, typename V::reg *w) {
        float d, m;
        V::halves_to_f32(p, d, m);
        V::q4x(reinterpret_cast<const uint8_t *>(p + 4), d, m, w);
    }
};

// Calls f(Format{}) for the weight dtype; op.cpp admits no other dtype.
template <class Fn> void with_format(llaisysDataType_t dtype, Fn &&f) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return f(F32W{});
    case LLAISYS_DTYPE_BF16:
        return f(BF16W{});
    case LLAISYS_DTYPE_F16:
        return f(F16W{});
    case LLAISYS_DTYPE_Q8_0:
        return f(Q8_0W{});
    case LLAISYS_DTYPE_Q4_0:
        return f(Q4_0W{});
    case LLAISYS_DTYPE_Q4_1:
        return f(Q4_1W{});
    default:
        return;
    }
}

template <class V, class F> void store_out(std::byte *row, size_t j, float v) {
    if constexpr (F::out == OutKind::F32) {
        std::memcpy(row + 4 * j, &v, 4);
    } else {
        const uint16_t h = F::out == OutKind::F16 ? V::f32_to_half(v) : f32_to_bf16_bits(v);
        std::memcpy(row + 2 * j, &h, 2);
    }
}

constexpr size_t out_elem_bytes(OutKind k) { return k == OutKind::F32 ? 4 : 2; }

// The usual dot scheme: weight chunks widened to f32 registers, f32 activations, FMA.
// A scheme D provides xelem (activation element type), W (one weight chunk in registers),
// load_w, madd (acc += chunk . 32 activations) and x_at (one activation as f32, for tails).
template <class V, class F> struct FloatDot {
    using xelem = float;
    struct W {
        typename V::reg r[32 / V::width];
    };
    static void load_w(const std::byte *p, W &w) { F::template chunk<V>(p, w.r); }
    static typename V::reg madd(const W &w, const float *x, typename V::reg acc) {
        for (int q = 0; q < 32 / V::width; ++q)
            acc = V::fmadd(w.r[q], V::load(x + q * V::width), acc);
        return acc;
    }
    static float x_at(const float *x, size_t j) { return x[j]; }
};

// NR weight rows x MR input rows: each weight chunk is loaded (and dequantized) once into
// registers and multiplied into all MR rows, so W streams through the core once per tile.
//
// With prefetch set (the first tile of a pass over a weight block), it also prefetches the
// block after next (2 NR rows on; one block ahead is too close to hide the latency), in step
// with the chunks: the hardware prefetcher alone does not ramp up on NR interleaved streams of
// a few KiB each, and a decode step is bound by how fast weights arrive from memory. Quantized
// blocks (few bytes, much work each) go straight to L1 where dequantization wants them; float rows
// stream fast enough to thrash L1, so they go to L2. Measured on Zen 4 (scripts/bench_ops.py). A
// prefetch past the end of W cannot fault.
template <class V, class D, class F, int NR, int MR>
void tile(const KernelArgs &a, size_t j0, size_t i0, bool prefetch) {
    using X = typename D::xelem;
    const std::byte *wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = a.w + (j0 + r) * a.w_row_bytes;
    const X *xr[MR];
    for (int i = 0; i < MR; ++i) xr[i] = static_cast<const X *>(a.x) + (i0 + i) * a.ldx;
    typename V::reg acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int r = 0; r < NR; ++r) acc[i][r] = V::zero();

    const size_t chunks = a.k / 32;
    const std::byte *next = wr[0] + 2 * NR * a.w_row_bytes;
    constexpr size_t step = NR * F::chunk_bytes; // bytes of the next block per chunk
    for (size_t c = 0; c < chunks; ++c) {
        if (prefetch) {
            for (size_t off = 0; off < step; off += 64) {
                if constexpr (F::quantized)
                    __builtin_prefetch(next + c * step + off);
                else
                    __builtin_prefetch(next + c * step + off, 0, 1);
            }
        }
        for (int r = 0; r < NR; ++r) {
            typename D::W w;
            D::load_w(wr[r] + c * F::chunk_bytes, w);
            for (int i = 0; i < MR; ++i) acc[i][r] = D::madd(w, xr[i] + c * 32, acc[i][r]);
        }
    }

    if constexpr (V::tile_epilogue && MR == 4 && NR == 4) {
        if (F::quantized || a.k % 32 == 0) {
            V::template store_tile<F::out>(acc, a.bias ? a.bias + j0 : nullptr,
                                           a.out + (i0 * a.n + j0) * out_elem_bytes(F::out), a.n);
            return;
        }
    }
    for (int i = 0; i < MR; ++i) {
        std::byte *orow = a.out + (i0 + i) * a.n * out_elem_bytes(F::out);
        for (int r = 0; r < NR; ++r) {
            float s = V::hsum(acc[i][r]);
            if constexpr (!F::quantized)
                for (size_t j = chunks * 32; j < a.k; ++j)
                    s += F::template elem<V>(wr[r], j) * D::x_at(xr[i], j);
            if (a.bias) s += a.bias[j0 + r];
            store_out<V, F>(orow, j0 + r, s);
        }
    }
}

// The tile for the last mr < V::mr input rows.
template <class V, class D, class F, int NR, int MR = V::mr>
void tile_rows(const KernelArgs &a, size_t j0, size_t i0, size_t mr, bool prefetch) {
    if constexpr (MR > 1) {
        if (mr < size_t(MR)) return tile_rows<V, D, F, NR, MR - 1>(a, j0, i0, mr, prefetch);
    }
    tile<V, D, F, NR, MR>(a, j0, i0, prefetch);
}

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr size_t kParallelMinWork = size_t(1) << 16;
// Activation bytes per pass: a pass's rows stay in L2 while every weight block streams by
// (one pass over a long prefill would re-read all of x from L3 for each block), yet at least
// kPassMinRows rows, so a decode batch runs in one pass and reads W once.
constexpr size_t kPassBytes = size_t(256) << 10;
constexpr size_t kPassMinRows = 64;

// count products of one input (as[i].x, m, k and threads equal, one weight format): their
// weight blocks form one index space shared out in one parallel region.
template <class V, class D, class F> void gemm_format(const KernelArgs *as, size_t count) {
    constexpr size_t NR = 4;
    const KernelArgs &a0 = as[0];
    size_t first_block[kMaxSharedInput + 1] = {}, work = 0;
    for (size_t p = 0; p < count; ++p) {
        first_block[p + 1] = first_block[p] + (as[p].n + NR - 1) / NR;
        work += a0.m * as[p].n * a0.k;
    }
    const ptrdiff_t blocks = ptrdiff_t(first_block[count]);
    const bool parallel = a0.threads > 1 && work >= kParallelMinWork;
    const ptrdiff_t chunk = blocks >= 8 * a0.threads ? blocks / (8 * a0.threads) : 1;
    size_t pass = kPassBytes / (a0.k * sizeof(typename D::xelem));
    pass = pass < kPassMinRows ? kPassMinRows : pass / V::mr * V::mr;
#pragma omp parallel num_threads(a0.threads) if (parallel)
    for (size_t p0 = 0; p0 < a0.m; p0 += pass) {
        const size_t p1 = a0.m - p0 < pass ? a0.m : p0 + pass;
        // Blocks handed out in chunks as threads come free: a thread the OS preempts (the
        // machine may be shared) holds up no fixed share. Disjoint outputs: no barrier.
#pragma omp for schedule(dynamic, chunk) nowait
        for (ptrdiff_t b = 0; b < blocks; ++b) {
            size_t p = 0;
            while (size_t(b) >= first_block[p + 1]) ++p;
            const KernelArgs &a = as[p];
            const size_t j0 = (size_t(b) - first_block[p]) * NR;
            for (size_t i0 = p0; i0 < p1; i0 += V::mr) {
                const size_t left = p1 - i0, mr = left < size_t(V::mr) ? left : size_t(V::mr);
                if (j0 + NR <= a.n) {
                    tile_rows<V, D, F, NR>(a, j0, i0, mr, i0 == p0);
                } else {
                    for (size_t j = j0; j < a.n; ++j) tile_rows<V, D, F, 1>(a, j, i0, mr, i0 == p0);
                }
            }
        }
    }
}

// All weight dtypes with f32 activations (KernelArgs::x is float; one wtype for all).
template <class V> void gemm_f32_act(const KernelArgs *as, size_t count) {
    with_format(as[0].wtype, [&](auto f) {
        using F = decltype(f);
        gemm_format<V, FloatDot<V, F>, F>(as, count);
    });
}

// Dequantizes / widens rows of any weight dtype (or F16/BF16 activations) to f32.
template <class V>
void rows_to_f32_any(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype,
                     size_t rows, size_t k, float *dst, size_t ld_dst) {
    with_format(dtype, [&](auto f) {
        using F = decltype(f);
        constexpr int C = 32 / V::width;
        for (size_t r = 0; r < rows; ++r) {
            const std::byte *row = src + r * src_row_bytes;
            float *d = dst + r * ld_dst;
            const size_t chunks = k / 32;
            for (size_t c = 0; c < chunks; ++c) {
                typename V::reg w[C];
                F::template chunk<V>(row + c * F::chunk_bytes, w);
                for (int q = 0; q < C; ++q) V::store(d + c * 32 + q * V::width, w[q]);
            }
            if constexpr (!F::quantized)
                for (size_t j = chunks * 32; j < k; ++j) d[j] = F::template elem<V>(row, j);
        }
    });
}

} // namespace
} // namespace llaisys::ops::cpu
