#include "ops/linear/nvidia/linear_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <cublas_v2.h>

#include <mutex>
#include <vector>

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

void check_cublas(cublasStatus_t status, const char *what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        fail(LLAISYS_ERR_DEVICE, what, ": ", cublasGetStatusString(status));
}

// One handle per device, created on first use and kept for the process.
cublasHandle_t handle() {
    static std::mutex mutex;
    static auto *handles = new std::vector<cublasHandle_t>();
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mutex);
    if (size_t(device) >= handles->size()) handles->resize(size_t(device) + 1, nullptr);
    cublasHandle_t &h = (*handles)[size_t(device)];
    if (!h) {
        check_cublas(cublasCreate(&h), "cublasCreate");
        check_cublas(cublasSetStream(h, stream()), "cublasSetStream");
    }
    return h;
}

// out rows = bias, before the GEMM adds x . W^T onto them (beta = 1).
template <typename T> __global__ void fill_bias_kernel(T *out, const T *bias, size_t m, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < m * n;
         i += size_t(gridDim.x) * blockDim.x)
        out[i] = bias[i % n];
}

cudaDataType_t cuda_type(llaisysDataType_t dtype) {
    switch (dtype) {
    case LLAISYS_DTYPE_F32:
        return CUDA_R_32F;
    case LLAISYS_DTYPE_F16:
        return CUDA_R_16F;
    case LLAISYS_DTYPE_BF16:
        return CUDA_R_16BF;
    default:
        fail(LLAISYS_ERR_DTYPE, "linear: dtype ", dtype_name(dtype), " is not taken on the GPU");
    }
}

} // namespace

void linear(const cpu::LinearOperands &op) {
    const cudaDataType_t type = cuda_type(op.wtype);
    if (op.bias)
        dispatch_cuda_float(op.wtype, "linear", [&](auto tag) {
            using T = std::remove_pointer_t<decltype(tag)>;
            const unsigned grid = std::min(blocks_for(op.m * op.n, 256), 65535u);
            fill_bias_kernel<<<grid, 256, 0, stream()>>>(reinterpret_cast<T *>(op.out),
                                                         reinterpret_cast<const T *>(op.bias),
                                                         op.m, op.n);
            check_launch("linear bias");
        });
    const float alpha = 1.0f, beta = op.bias ? 1.0f : 0.0f;
    // Column-major view: out^T [n, m] = W [k, n]^T . x^T [k, m].
    check_cublas(cublasGemmEx(handle(), CUBLAS_OP_T, CUBLAS_OP_N, int(op.n), int(op.m), int(op.k),
                              &alpha, op.w, type, int(op.k), op.x, type, int(op.ldx), &beta,
                              op.out, type, int(op.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
}

} // namespace llaisys::ops::nvidia
