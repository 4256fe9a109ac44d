#include "models/nvidia/pending_ids.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <cstring>

namespace llaisys::models::nvidia {

using namespace device::nvidia;

PendingIds::~PendingIds() {
    if (pending_) cudaStreamSynchronize(stream()); // errors cannot leave a destructor
    for (Slot &s : slots_) {
        if (s.pinned) cudaFreeHost(s.pinned);
        if (s.done) cudaEventDestroy(cudaEvent_t(s.done));
    }
}

void PendingIds::send(const int64_t *device_ids, size_t n, int64_t *out) {
    constexpr size_t kSlots = LLAISYS_MAX_PENDING_DECODES;
    if (pending_ == kSlots) wait_until(kSlots - 1);
    Slot &s = slots_[(oldest_ + pending_) % kSlots];
    if (n > s.capacity) {
        if (s.pinned) check_cuda(cudaFreeHost(s.pinned), "cudaFreeHost");
        s.pinned = nullptr, s.capacity = 0;
        const size_t grown = std::max<size_t>(n, 256);
        check_cuda(cudaMallocHost(reinterpret_cast<void **>(&s.pinned), grown * sizeof(int64_t)),
                   "cudaMallocHost");
        s.capacity = grown;
    }
    if (!s.done) {
        cudaEvent_t event = nullptr;
        check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
        s.done = event;
    }
    check_cuda(cudaMemcpyAsync(s.pinned, device_ids, n * sizeof(int64_t), cudaMemcpyDeviceToHost,
                               stream()),
               "cudaMemcpyAsync");
    check_cuda(cudaEventRecord(cudaEvent_t(s.done), stream()), "cudaEventRecord");
    s.out = out, s.n = n;
    ++pending_;
}

void PendingIds::wait_until(size_t max_pending) {
    while (pending_ > max_pending) {
        Slot &s = slots_[oldest_];
        oldest_ = (oldest_ + 1) % LLAISYS_MAX_PENDING_DECODES;
        --pending_;
        const cudaError_t err = cudaEventSynchronize(cudaEvent_t(s.done));
        if (err != cudaSuccess) {
            pending_ = 0;
            check_cuda(err, "cudaEventSynchronize");
        }
        std::memcpy(s.out, s.pinned, s.n * sizeof(int64_t));
    }
}

} // namespace llaisys::models::nvidia
