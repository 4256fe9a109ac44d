#include "models/nvidia/kv_kernels_nvidia.hpp"

#include "ops/self_attention/nvidia/attention_nvidia.cuh"

namespace llaisys::models::nvidia {

namespace {

using namespace device::nvidia;

// Key j of token t is cell table[row[t] + j / block_size] * block_size + j % block_size;
// tokens of one table row share their key list.
struct PagedKeys {
    const int32_t *table;
    const int64_t *row;
    const int32_t *count;
    int block_size;
    ptrdiff_t k_cell, v_cell; // elements per cache cell
    __device__ int n_keys(int t) const { return count[t]; }
    __device__ int64_t list(int t) const { return row[t]; }
    __device__ ptrdiff_t cell(int t, int j) const {
        return ptrdiff_t(table[row[t] + j / block_size]) * block_size + j % block_size;
    }
    __device__ ptrdiff_t k_row(int t, int j) const { return cell(t, j) * k_cell; }
    __device__ ptrdiff_t v_row(int t, int j) const { return cell(t, j) * v_cell; }
    ptrdiff_t k_pitch() const { return k_cell; }
    ptrdiff_t v_pitch() const { return v_cell; }
};

} // namespace

void move_rows(const cpu::RowMoves &m, bool scatter, const int64_t *idx, size_t n) {
    static_assert(cpu::kMaxRowMoves == size_t(kMaxMoves));
    const int count = int(m.count);
    if (scatter)
        device::nvidia::move_rows<true>(m.cells, m.rows, m.row_bytes, count, idx, n,
                                        "scatter_rows");
    else
        device::nvidia::move_rows<false>(m.rows, m.cells, m.row_bytes, count, idx, n,
                                         "gather_rows");
}

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const cpu::AttentionShape &s,
                     float scale, llaisysDataType_t dtype, size_t max_keys, int device_id,
                     float *scratch, size_t scratch_floats) {
    const int nh = int(s.nh), nkvh = int(s.nkvh), d = int(s.d), dv = int(s.dv);
    const ops::nvidia::AttentionDims a{int(s.n), nh,     nkvh, d, dv, nh * dv,
                                       dv,       nh * d, d,    d, dv, scale};
    const PagedKeys keys{
        table, row, n_keys, int(block_size), ptrdiff_t(nkvh) * d, ptrdiff_t(nkvh) * dv};
    ops::nvidia::dispatch_cuda_float(dtype, "paged_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        ops::nvidia::attention(reinterpret_cast<T *>(out), reinterpret_cast<const T *>(q),
                               reinterpret_cast<const T *>(k_cache),
                               reinterpret_cast<const T *>(v_cache), a, keys, int(max_keys),
                               device_id, scratch, scratch_floats);
    });
}

// n * splits <= n + kTargetBlocks (attention_splits), each split row dv + 2 floats.
size_t attention_scratch_floats(size_t n, size_t nh, size_t dv) {
    return nh * (n + size_t(ops::nvidia::kTargetBlocks)) * (dv + 2);
}

} // namespace llaisys::models::nvidia
