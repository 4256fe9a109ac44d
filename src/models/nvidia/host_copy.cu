#include "models/nvidia/host_copy.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::models::nvidia {

using namespace device::nvidia;

int64_t *alloc_pinned_ids(size_t n) {
    void *p = nullptr;
    check_cuda(cudaMallocHost(&p, n * sizeof(int64_t)), "cudaMallocHost");
    return static_cast<int64_t *>(p);
}

void free_pinned(void *p) {
    if (p) cudaFreeHost(p); // also from destructors: errors are not thrown
}

void record_behind(void **event) {
    if (!*event) {
        cudaEvent_t e = nullptr;
        check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
        *event = e;
    }
    check_cuda(cudaEventRecord(cudaEvent_t(*event), stream()), "cudaEventRecord");
}

void copy_ids_behind(int64_t *dst, const int64_t *src, size_t n, void **event) {
    check_cuda(cudaMemcpyAsync(dst, src, n * sizeof(int64_t), cudaMemcpyDeviceToHost, stream()),
               "cudaMemcpyAsync");
    record_behind(event);
}

void wait_event(void *event) {
    check_cuda(cudaEventSynchronize(cudaEvent_t(event)), "cudaEventSynchronize");
}

void destroy_event(void *event) {
    if (event) cudaEventDestroy(cudaEvent_t(event));
}

void wait_stream() { cudaStreamSynchronize(stream()); }

} // namespace llaisys::models::nvidia
