// Portable kernels of linear for CPUs without AVX2 (and LLAISYS_CPU_PATH=generic): the same
// tiles over 8-float structs the compiler vectorizes with baseline SSE2.
#include "ops/linear/cpu/linear_kernels.hpp"

namespace llaisys::ops::cpu {
namespace {

struct Generic {
    struct reg {
        float v[8];
    };
    static constexpr int width = 8;
    static constexpr int mr = 2;

    static constexpr bool tile_epilogue = false; // hsum per output
    static reg zero() { return reg{}; }
    static reg load(const float *p) {
        reg r;
        std::memcpy(r.v, p, sizeof r.v);
        return r;
    }
    static void store(float *p, const reg &v) { std::memcpy(p, v.v, sizeof v.v); }
    static reg fmadd(const reg &a, const reg &b, reg c) {
        for (int l = 0; l < 8; ++l) c.v[l] += a.v[l] * b.v[l];
        return c;
    }
    static float hsum(const reg &v) {
        return ((v.v[0] + v.v[4]) + (v.v[1] + v.v[5])) + ((v.v[2] + v.v[6]) + (v.v[3] + v.v[7]));
    }
    static float half_to_f32(uint16_t h) { return f16_to_f32(fp16_t{h}); }
    static void halves_to_f32(const std::byte *p, float &a, float &b) {
        uint16_t h[2];
        std::memcpy(h, p, 4);
        a = half_to_f32(h[0]);
        b = half_to_f32(h[1]);
    }
    static uint16_t f32_to_half(float f) { return f32_to_f16(f).bits; }

    static void f32x(const float *p, reg *w) {
        for (int q = 0; q < 4; ++q) w[q] = load(p + 8 * q);
    }
    static void bf16x(const uint16_t *p, reg *w) {
        for (int j = 0; j < 32; ++j) w[j / 8].v[j % 8] = bf16_bits_to_f32(p[j]);
    }
    static void f16x(const uint16_t *p, reg *w) {
        for (int j = 0; j < 32; ++j) w[j / 8].v[j % 8] = half_to_f32(p[j]);
    }
    static void q8x(const int8_t *q, float d, reg *w) {
        for (int j = 0; j < 32; ++j) w[j / 8].v[j % 8] = d * float(q[j]);
    }
    static void q4x(const uint8_t *q, float d, float c, reg *w) {
        for (int j = 0; j < 16; ++j) {
            w[j / 8].v[j % 8] = d * float(q[j] & 0x0f) + c;
            w[2 + j / 8].v[j % 8] = d * float(q[j] >> 4) + c;
        }
    }
};

} // namespace

namespace linear_generic {
void gemm(const KernelArgs *a, size_t count) { gemm_f32_act<Generic>(a, count); }
void rows_to_f32(const std::byte *src, size_t src_row_bytes, llaisysDataType_t dtype, size_t rows,
                 size_t k, float *dst, size_t ld_dst) {
    rows_to_f32_any<Generic>(src, src_row_bytes, dtype, rows, k, dst, ld_dst);
}
} // namespace linear_generic

} // namespace llaisys::ops::cpu
