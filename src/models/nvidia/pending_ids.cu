#include "models/nvidia/pending_ids.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <cstring>

namespace llaisys::models::nvidia {

using namespace device::nvidia;

PendingIds::~PendingIds() {
    if (n_) cudaStreamSynchronize(stream()); // errors cannot leave a destructor
    if (pinned_) cudaFreeHost(pinned_);
}

void PendingIds::send(const int64_t *device_ids, size_t n, int64_t *out) {
    CHECK_ARG(n_ == 0, "PendingIds::send: the previous ids are still pending");
    if (n > capacity_) {
        if (pinned_) check_cuda(cudaFreeHost(pinned_), "cudaFreeHost");
        pinned_ = nullptr, capacity_ = 0;
        const size_t grown = std::max<size_t>(n, 256);
        check_cuda(cudaMallocHost(reinterpret_cast<void **>(&pinned_), grown * sizeof(int64_t)),
                   "cudaMallocHost");
        capacity_ = grown;
    }
    check_cuda(
        cudaMemcpyAsync(pinned_, device_ids, n * sizeof(int64_t), cudaMemcpyDeviceToHost, stream()),
        "cudaMemcpyAsync");
    out_ = out, n_ = n;
}

void PendingIds::wait() {
    if (!n_) return;
    const size_t n = n_;
    n_ = 0;
    check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    std::memcpy(out_, pinned_, n * sizeof(int64_t));
}

} // namespace llaisys::models::nvidia
