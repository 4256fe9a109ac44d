#include "ops/self_attention/nvidia/self_attention_nvidia.hpp"

#include "ops/self_attention/nvidia/attention_nvidia.cuh"

namespace llaisys::ops::nvidia {

namespace {

// Keys 0..klen-qlen+t of query t, all of one list, rows k_token / v_token elements apart
// (the pitches every K / V row offset is a multiple of).
struct DenseKeys {
    int qlen, klen;
    ptrdiff_t k_token, v_token;
    __device__ int n_keys(int t) const { return klen - qlen + t + 1; }
    __device__ int64_t list(int) const { return 0; }
    __device__ ptrdiff_t k_row(int, int j) const { return ptrdiff_t(j) * k_token; }
    __device__ ptrdiff_t v_row(int, int j) const { return ptrdiff_t(j) * v_token; }
    ptrdiff_t k_pitch() const { return k_token; }
    ptrdiff_t v_pitch() const { return v_token; }
};

} // namespace

void self_attention(std::byte *out, const std::byte *q, const std::byte *k, const std::byte *v,
                    llaisysDataType_t dtype, const cpu::AttentionArgs &s, int device_id) {
    const AttentionDims a{int(s.qlen), int(s.n_heads), int(s.n_kv_heads), int(s.d),
                          int(s.dv),   s.out_token,    s.out_head,        s.q_token,
                          s.q_head,    s.k_head,       s.v_head,          s.scale};
    const DenseKeys keys{int(s.qlen), int(s.klen), s.k_token, s.v_token};
    dispatch_cuda_float(dtype, "self_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        attention(reinterpret_cast<T *>(out), reinterpret_cast<const T *>(q),
                  reinterpret_cast<const T *>(k), reinterpret_cast<const T *>(v), a, keys,
                  int(s.klen), int(s.qlen), false, device_id, nullptr, 0);
    });
}

} // namespace llaisys::ops::nvidia
