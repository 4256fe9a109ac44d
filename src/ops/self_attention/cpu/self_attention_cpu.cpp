#include "ops/self_attention/cpu/self_attention_cpu.hpp"

#include "device/cpu/cpu_features.hpp"
#include "ops/self_attention/cpu/self_attention_kernel.hpp"

#include <cmath>
#include <type_traits>
#include <vector>

namespace llaisys::ops::cpu {

namespace {

struct GenericOps {
    static Rows rows(const float *src, ptrdiff_t stride, size_t, size_t, float *) {
        return {src, stride};
    }

    template <typename T>
    static Rows rows(const T *src, ptrdiff_t stride, size_t nb, size_t n, float *buf) {
        for (size_t j = 0; j < nb; ++j)
            for (size_t i = 0; i < n; ++i) buf[j * n + i] = to_f32(src[ptrdiff_t(j) * stride + i]);
        return {buf, ptrdiff_t(n)};
    }

    static void scores(const float *q, Rows keys, size_t nb, size_t d, float *out) {
        for (size_t j = 0; j < nb; ++j) {
            const float *key = keys.data + ptrdiff_t(j) * keys.stride;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (size_t i = 0; i < d; ++i) s += q[i] * key[i];
            out[j] = s;
        }
    }

    static float exp_sum(float *x, size_t nb, float max) {
        float sum = 0.0f;
        for (size_t j = 0; j < nb; ++j) {
            x[j] = std::exp(x[j] - max);
            sum += x[j];
        }
        return sum;
    }

    static void scale(float *y, float alpha, size_t n) {
        for (size_t i = 0; i < n; ++i) y[i] *= alpha;
    }

    static void accumulate(float *acc, const float *p, Rows values, size_t nb, size_t dv) {
        for (size_t j = 0; j < nb; ++j) {
            const float *value = values.data + ptrdiff_t(j) * values.stride;
            for (size_t i = 0; i < dv; ++i) acc[i] += p[j] * value[i];
        }
    }
};

template <typename T>
using AttendRowFn = void (*)(float *, const float *, const T *, const T *, size_t,
                             const AttentionArgs &, float *);

template <typename T> AttendRowFn<T> attend_row_fn() {
    if (device::cpu::kernel_path() != device::cpu::KernelPath::Generic)
        return static_cast<AttendRowFn<T>>(&self_attention_avx2::attend_row);
    return &attend_row<GenericOps, T>;
}

template <typename T> using WidenRowFn = void (*)(const T *, float *, size_t);

template <typename T> void widen_row_generic(const T *src, float *dst, size_t n) {
    GenericOps::rows(src, 0, 1, n, dst);
}

template <typename T> WidenRowFn<T> widen_row_fn() {
    if (device::cpu::kernel_path() != device::cpu::KernelPath::Generic)
        return static_cast<WidenRowFn<T>>(&self_attention_avx2::widen_row);
    return &widen_row_generic<T>;
}

// Rows [len, heads, n] at the given strides -> packed f32 [len, heads, n].
template <typename T>
std::vector<float> widen(const T *src, size_t len, size_t heads, size_t n, ptrdiff_t token_stride,
                         ptrdiff_t head_stride) {
    std::vector<float> dst(len * heads * n);
    const WidenRowFn<T> widen_row = widen_row_fn<T>();
#pragma omp parallel for schedule(static) if (len * heads * n > 65536)
    for (size_t t = 0; t < len; ++t)
        for (size_t h = 0; h < heads; ++h)
            widen_row(src + ptrdiff_t(t) * token_stride + ptrdiff_t(h) * head_stride,
                      dst.data() + (t * heads + h) * n, n);
    return dst;
}

// Every (query, head) row, with K/V of element type KV (T, or f32 once widened).
template <typename T, typename KV>
void attend_all(T *out, const T *q, const KV *k, const KV *v, const AttentionArgs &a) {
    const AttendRowFn<KV> attend = attend_row_fn<KV>();
    const size_t group = a.n_heads / a.n_kv_heads;
    const size_t past = a.klen - a.qlen;
    const size_t tasks = a.qlen * a.n_heads;
#pragma omp parallel if (tasks > 1)
    {
        std::vector<float> q_f32(a.d), acc(a.dv), scratch(attend_row_scratch(a));
        // Later queries see more keys: dynamic scheduling balances the causal triangle.
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < tasks; ++task) {
            const size_t qi = task / a.n_heads, h = task % a.n_heads, kvh = h / group;
            const T *q_row = q + ptrdiff_t(qi) * a.q_token + ptrdiff_t(h) * a.q_head;
            for (size_t i = 0; i < a.d; ++i) q_f32[i] = to_f32(q_row[i]) * a.scale;
            attend(acc.data(), q_f32.data(), k + ptrdiff_t(kvh) * a.k_head,
                   v + ptrdiff_t(kvh) * a.v_head, past + qi + 1, a, scratch.data());
            T *out_row = out + ptrdiff_t(qi) * a.out_token + ptrdiff_t(h) * a.out_head;
            for (size_t i = 0; i < a.dv; ++i) out_row[i] = from_f32<T>(acc[i]);
        }
    }
}

} // namespace

void self_attention(std::byte *out, const std::byte *q, const std::byte *k, const std::byte *v,
                    llaisysDataType_t dtype, const AttentionArgs &a) {
    dispatch_float(dtype, "self_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *po = reinterpret_cast<T *>(out);
        auto *pq = reinterpret_cast<const T *>(q);
        auto *pk = reinterpret_cast<const T *>(k);
        auto *pv = reinterpret_cast<const T *>(v);
        if constexpr (std::is_same_v<T, float>) {
            attend_all(po, pq, pk, pv, a);
        } else if (a.qlen == 1) {
            attend_all(po, pq, pk, pv, a); // decode: each row widened as it is read
        } else {
            // Several queries read every K/V row (qlen * group times): widen each once.
            const std::vector<float> k32 =
                widen(pk, a.klen, a.n_kv_heads, a.d, a.k_token, a.k_head);
            const std::vector<float> v32 =
                widen(pv, a.klen, a.n_kv_heads, a.dv, a.v_token, a.v_head);
            AttentionArgs packed = a;
            packed.k_token = ptrdiff_t(a.n_kv_heads * a.d);
            packed.k_head = ptrdiff_t(a.d);
            packed.v_token = ptrdiff_t(a.n_kv_heads * a.dv);
            packed.v_head = ptrdiff_t(a.dv);
            attend_all(po, pq, k32.data(), v32.data(), packed);
        }
    });
}

} // namespace llaisys::ops::cpu
