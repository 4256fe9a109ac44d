// A decode step's sampled ids on their way to the host: copied behind the step's kernels on
// the compute stream into pinned memory, and handed to the caller's out_token once the host
// waits (llaisysModelDecodeAsync, llaisysModelSynchronize).
#pragma once

#include <cstddef>
#include <cstdint>

namespace llaisys::models::nvidia {

class PendingIds {
public:
    PendingIds() = default;
    PendingIds(const PendingIds &) = delete;
    PendingIds &operator=(const PendingIds &) = delete;
    ~PendingIds(); // waits for a copy in flight before freeing its pinned buffer

    // Queues the copy of n ids from device memory; wait() writes them to out. At most one
    // copy is pending: the caller waits for the previous one first.
    void send(const int64_t *device_ids, size_t n, int64_t *out);
    bool pending() const { return n_ != 0; }
    // Waits for the stream and writes the pending ids to their out; nothing when none is
    // pending. On a device error nothing is pending afterwards and the error is thrown.
    void wait();

private:
    int64_t *pinned_ = nullptr;
    size_t capacity_ = 0;
    int64_t *out_ = nullptr;
    size_t n_ = 0;
};

} // namespace llaisys::models::nvidia
