// Decode steps' sampled ids on their way to the host: each copied behind its step's kernels
// on the compute stream into pinned memory, and handed to the caller's out_token once the
// host waits for that step (llaisysModelDecodeAsync, llaisysModelSynchronize).
#pragma once

#include "llaisys/model.h"

#include <cstddef>
#include <cstdint>

namespace llaisys::models::nvidia {

class PendingIds {
public:
    PendingIds() = default;
    PendingIds(const PendingIds &) = delete;
    PendingIds &operator=(const PendingIds &) = delete;
    ~PendingIds(); // waits for the copies in flight before freeing their buffers

    // Queues the copy of n ids from device memory behind the work queued so far; a wait
    // writes them to out. With LLAISYS_MAX_PENDING_DECODES pending, waits for the oldest first.
    void send(const int64_t *device_ids, size_t n, int64_t *out);
    // Waits for pending copies, oldest first, until at most max_pending remain, writing each
    // to its out. On a device error nothing is pending afterwards and the error is thrown.
    void wait_until(size_t max_pending);

private:
    struct Slot {
        int64_t *pinned = nullptr;
        size_t capacity = 0;
        void *done = nullptr; // cudaEvent_t recorded after the copy
        int64_t *out = nullptr;
        size_t n = 0;
    };
    Slot slots_[LLAISYS_MAX_PENDING_DECODES];
    size_t oldest_ = 0, pending_ = 0;
};

} // namespace llaisys::models::nvidia
