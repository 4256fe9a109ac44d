// Decode steps queued by llaisysModelDecodeAsync and not waited for yet, oldest first. Each
// holds the ids it sampled until the host waits for it, when they go to the caller's
// out_token: on the GPU they are copied behind the step's kernels into pinned memory (or a
// graph step's last kernel writes them there); on the CPU, where the step has run when the
// call returns, they are copied at once. Every queued
// step is an entry, whether it sampled or not, so that llaisysModelSynchronize's
// max_pending counts decode calls alike on every device.
#pragma once

#include "llaisys/model.h"

#include <cstddef>
#include <cstdint>

namespace llaisys::models {

class PendingIds {
public:
    explicit PendingIds(llaisysDeviceType_t device) : device_(device) {}
    PendingIds(const PendingIds &) = delete;
    PendingIds &operator=(const PendingIds &) = delete;
    ~PendingIds(); // waits for the copies in flight before freeing their buffers

    // Queues a step: n ids at ids (the model's device memory; n = 0: it sampled nothing)
    // that a wait writes to out. With LLAISYS_MAX_PENDING_DECODES pending, waits for the
    // oldest first.
    void push(const int64_t *ids, size_t n, int64_t *out);
    // Queues a GPU step whose kernels write its n ids to host_ids (mapped pinned memory that
    // stays until the step is waited for).
    void push_written(const int64_t *host_ids, size_t n, int64_t *out);
    size_t pending() const { return pending_; }
    // Waits for queued steps, oldest first, until at most max_pending remain, writing the ids
    // of each to its out. On a device error nothing is pending afterwards and it is thrown.
    void wait_until(size_t max_pending);

private:
    struct Slot {
        int64_t *host = nullptr; // pinned on the GPU
        size_t capacity = 0;
        const int64_t *ids = nullptr; // where the waited-for ids are: host, or push_written's
        void *done = nullptr;         // GPU: cudaEvent_t recorded behind the step
        int64_t *out = nullptr;
        size_t n = 0;
    };
    Slot &take_slot(); // the next one, waiting for the oldest when all are pending
    llaisysDeviceType_t device_;
    Slot slots_[LLAISYS_MAX_PENDING_DECODES];
    size_t oldest_ = 0, pending_ = 0;
};

} // namespace llaisys::models
