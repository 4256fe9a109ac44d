#include "models/nvidia/kv_kernels_nvidia.hpp"

#include "ops/rope/nvidia/rope_nvidia.cuh"
#include "ops/self_attention/nvidia/attention_nvidia.cuh"

#include <cmath>

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
    int block_shift;          // log2(block_size) when a power of two (shifts, not divisions,
                              // in the decode kernel's address math), else -1
    ptrdiff_t k_cell, v_cell; // elements per cache cell
    __device__ int n_keys(int t) const { return count[t]; }
    __device__ int64_t list(int t) const { return row[t]; }
    __device__ ptrdiff_t cell(int t, int j) const {
        if (block_shift >= 0)
            return ptrdiff_t(table[row[t] + (j >> block_shift)]) << block_shift |
                   (j & (block_size - 1));
        return ptrdiff_t(table[row[t] + j / block_size]) * block_size + j % block_size;
    }
    __device__ ptrdiff_t k_row(int t, int j) const { return cell(t, j) * k_cell; }
    __device__ ptrdiff_t v_row(int t, int j) const { return cell(t, j) * v_cell; }
    ptrdiff_t k_pitch() const { return k_cell; }
    ptrdiff_t v_pitch() const { return v_cell; }
};

// A block per token: the cell's old rows to the backups, then q's heads rotated in place and
// k's rotated into the cell, v copied beside them. A token whose cell repeats token 0's is a
// graph step's padding (real cells are distinct): it neither backs up nor writes.
// The token's cell and position (the step's inputs), its cell's old rows (earlier steps') and
// the angles are all read or made before the wait for the kernel before (the q/k/v product):
// after it, one round trip for q, k and v is left.
template <typename T>
__global__ void rope_store_kv_kernel(T *q, const T *k, const T *v, const int64_t *pos,
                                     const int64_t *cells, T *k_cache, T *v_cache, T *backup_k,
                                     T *backup_v, int nh, int nkvh, int d, int dv,
                                     TokenPitches pitch, double log_theta) {
    // The attention after it loads its keys before its own wait: launched now, it does so
    // while the q/k/v product runs.
    allow_dependents_early();
    const int t = blockIdx.x;
    const int64_t cell = cells[t];
    if (t > 0 && cell == cells[0]) return;
    const size_t k_row = size_t(nkvh) * d, v_row = size_t(nkvh) * dv;
    T *kc = k_cache + size_t(cell) * k_row, *vc = v_cache + size_t(cell) * v_row;
    if (backup_k) {
        for (size_t i = threadIdx.x; i < k_row; i += blockDim.x) backup_k[t * k_row + i] = kc[i];
        for (size_t i = threadIdx.x; i < v_row; i += blockDim.x) backup_v[t * v_row + i] = vc[i];
    }
    extern __shared__ float2 angles[];
    // Its barrier also orders every old value's read before the cell is written.
    ops::nvidia::rope_angles(angles, size_t(d), double(pos[t]), log_theta);
    wait_for_prior_grid();
    const int half = d / 2;
    for (int j = threadIdx.x; j < nh * half; j += blockDim.x) {
        T *head = q + t * pitch.q + ptrdiff_t(j / half) * d;
        ops::nvidia::rotate_pair(head, head, j % half, half, angles[j % half]);
    }
    for (int j = threadIdx.x; j < nkvh * half; j += blockDim.x)
        ops::nvidia::rotate_pair(kc + size_t(j / half) * d,
                                 k + t * pitch.k + ptrdiff_t(j / half) * d, j % half, half,
                                 angles[j % half]);
    for (size_t i = threadIdx.x; i < v_row; i += blockDim.x) vc[i] = v[t * pitch.v + i];
}

} // namespace

void rope_store_kv(std::byte *q, const std::byte *k, const std::byte *v, const int64_t *pos,
                   const int64_t *cells, std::byte *k_cache, std::byte *v_cache,
                   std::byte *backup_k, std::byte *backup_v, llaisysDataType_t dtype, size_t n,
                   size_t nh, size_t nkvh, size_t d, size_t dv, TokenPitches pitch, float theta) {
    if (n == 0) return;
    ops::nvidia::dispatch_cuda_float(dtype, "rope_store_kv", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        const unsigned threads = unsigned(std::min<size_t>(256, std::max<size_t>(nh * d / 2, 32)));
        launch_dependent(
            "rope_store_kv", rope_store_kv_kernel<T>, unsigned(n), (threads + 31) / 32 * 32,
            ops::nvidia::rope_angles_bytes(rope_store_kv_kernel<T>, d), reinterpret_cast<T *>(q),
            reinterpret_cast<const T *>(k), reinterpret_cast<const T *>(v), pos, cells,
            reinterpret_cast<T *>(k_cache), reinterpret_cast<T *>(v_cache),
            reinterpret_cast<T *>(backup_k), reinterpret_cast<T *>(backup_v), int(nh), int(nkvh),
            int(d), int(dv), pitch, std::log(double(theta)));
    });
}

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

namespace {

__global__ void take_sampled_ids_kernel(int64_t *tokens, const int32_t *prev_row,
                                        const int64_t *sampled, int n) {
    wait_for_prior_grid();
    allow_dependents_early();
    const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n && prev_row[i] >= 0) tokens[i] = sampled[prev_row[i]];
}

} // namespace

void take_sampled_ids(int64_t *tokens, const int32_t *prev_row, const int64_t *sampled, size_t n) {
    if (n == 0) return;
    launch_dependent("take_sampled_ids", take_sampled_ids_kernel, dim3(unsigned((n + 255) / 256)),
                     256, 0, tokens, prev_row, sampled, int(n));
}

void paged_attention(std::byte *out, const std::byte *q, const std::byte *k_cache,
                     const std::byte *v_cache, const int32_t *table, const int64_t *row,
                     const int32_t *n_keys, size_t block_size, const cpu::AttentionShape &s,
                     ptrdiff_t q_token, float scale, llaisysDataType_t dtype, size_t max_keys,
                     size_t max_run, bool settled, int device_id, float *scratch,
                     size_t scratch_floats) {
    const int nh = int(s.nh), nkvh = int(s.nkvh), d = int(s.d), dv = int(s.dv);
    const ops::nvidia::AttentionDims a{int(s.n), nh,      nkvh, d, dv, nh * dv,
                                       dv,       q_token, d,    d, dv, scale};
    int shift = -1;
    if ((block_size & (block_size - 1)) == 0)
        for (shift = 0; size_t(1) << shift < block_size;) ++shift;
    const PagedKeys keys{
        table, row, n_keys, int(block_size), shift, ptrdiff_t(nkvh) * d, ptrdiff_t(nkvh) * dv};
    ops::nvidia::dispatch_cuda_float(dtype, "paged_attention", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        ops::nvidia::attention(reinterpret_cast<T *>(out), reinterpret_cast<const T *>(q),
                               reinterpret_cast<const T *>(k_cache),
                               reinterpret_cast<const T *>(v_cache), a, keys, int(max_keys),
                               int(std::min<size_t>(max_run, size_t(a.n))), settled, device_id,
                               scratch, scratch_floats);
    });
}

// n * splits <= n + kTargetBlocks (attention_splits; decode_splits keeps n * splits <=
// max(n, kTargetBlocks)), each split row dv + 2 floats.
size_t attention_scratch_floats(size_t n, size_t nh, size_t dv) {
    return nh * (n + size_t(ops::nvidia::kTargetBlocks)) * (dv + 2);
}

} // namespace llaisys::models::nvidia
