// NVIDIA runtime: the CUDA runtime API behind the device table. Failures other than an
// allocation running out of memory throw llaisys::Error (LLAISYS_ERR_DEVICE); the table
// is called from C++ code that sits inside an api_guard.
#include "device/runtime.hpp"

#include <cuda_runtime.h>

namespace llaisys::device::nvidia {

namespace {

void check_cuda(cudaError_t err, const char *what) {
    if (err != cudaSuccess) fail(LLAISYS_ERR_DEVICE, what, ": ", cudaGetErrorString(err));
}

cudaMemcpyKind cuda_kind(llaisysMemcpyKind_t kind) {
    switch (kind) {
    case LLAISYS_MEMCPY_H2H:
        return cudaMemcpyHostToHost;
    case LLAISYS_MEMCPY_H2D:
        return cudaMemcpyHostToDevice;
    case LLAISYS_MEMCPY_D2H:
        return cudaMemcpyDeviceToHost;
    case LLAISYS_MEMCPY_D2D:
        return cudaMemcpyDeviceToDevice;
    }
    fail(LLAISYS_ERR_INVALID_ARGUMENT, "memcpy: unknown kind ", int(kind));
}

// No driver or no GPU is "zero devices", not an error: CPU-only machines ask too.
int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky status of the failed query
        return 0;
    }
    return n;
}

void set_device(int device_id) { check_cuda(cudaSetDevice(device_id), "cudaSetDevice"); }

void synchronize() { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

llaisysStream_t create_stream() {
    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    return stream;
}

void destroy_stream(llaisysStream_t stream) {
    if (stream) check_cuda(cudaStreamDestroy(cudaStream_t(stream)), "cudaStreamDestroy");
}

void stream_synchronize(llaisysStream_t stream) {
    check_cuda(cudaStreamSynchronize(cudaStream_t(stream)), "cudaStreamSynchronize");
}

// Out of memory is a NULL result (runtime.h); the error is cleared so later calls work.
void *malloc_device(size_t size) {
    void *ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return nullptr;
    }
    check_cuda(err, "cudaMalloc");
    return ptr;
}

void free_device(void *ptr) {
    if (ptr) check_cuda(cudaFree(ptr), "cudaFree");
}

void *malloc_host(size_t size) {
    void *ptr = nullptr;
    cudaError_t err = cudaMallocHost(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return nullptr;
    }
    check_cuda(err, "cudaMallocHost");
    return ptr;
}

void free_host(void *ptr) {
    if (ptr) check_cuda(cudaFreeHost(ptr), "cudaFreeHost");
}

void memcpy_sync(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind) {
    if (size) check_cuda(cudaMemcpy(dst, src, size, cuda_kind(kind)), "cudaMemcpy");
}

void memcpy_async(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind,
                  llaisysStream_t stream) {
    if (size)
        check_cuda(cudaMemcpyAsync(dst, src, size, cuda_kind(kind), cudaStream_t(stream)),
                   "cudaMemcpyAsync");
}

const LlaisysRuntimeAPI api = {device_count,  set_device,  synchronize,        create_stream,
                               destroy_stream, stream_synchronize, malloc_device, free_device,
                               malloc_host,   free_host,   memcpy_sync,        memcpy_async};

} // namespace

const LlaisysRuntimeAPI *runtime_api() { return &api; }

} // namespace llaisys::device::nvidia
