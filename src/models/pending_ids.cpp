#include "models/pending_ids.hpp"

#include "core/error.hpp"
#ifdef LLAISYS_ENABLE_NVIDIA
#include "models/nvidia/host_copy.hpp"
#endif

#include <algorithm>
#include <cstring>

namespace llaisys::models {

namespace {

constexpr size_t kSlots = LLAISYS_MAX_PENDING_DECODES;

// Host buffers for a device's ids: pinned on the GPU, where the copies are asynchronous.
int64_t *alloc_ids(llaisysDeviceType_t device, size_t n) {
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device == LLAISYS_DEVICE_NVIDIA) return nvidia::alloc_pinned_ids(n);
#endif
    (void)device;
    return new int64_t[n];
}

void free_ids(llaisysDeviceType_t device, int64_t *p) {
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device == LLAISYS_DEVICE_NVIDIA) return nvidia::free_pinned(p);
#endif
    (void)device;
    delete[] p;
}

} // namespace

PendingIds::~PendingIds() {
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device_ == LLAISYS_DEVICE_NVIDIA) {
        if (pending_) nvidia::wait_stream(); // copies in flight land before their buffers go
        for (Slot &s : slots_) nvidia::destroy_event(s.done);
    }
#endif
    for (Slot &s : slots_) free_ids(device_, s.host);
}

PendingIds::Slot &PendingIds::take_slot() {
    if (pending_ == kSlots) wait_until(kSlots - 1);
    return slots_[(oldest_ + pending_) % kSlots];
}

void PendingIds::push(const int64_t *ids, size_t n, int64_t *out) {
    Slot &s = take_slot();
    if (n > s.capacity) {
        free_ids(device_, s.host);
        s.host = nullptr, s.capacity = 0;
        const size_t grown = std::max<size_t>(n, 256);
        s.host = alloc_ids(device_, grown);
        s.capacity = grown;
    }
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device_ == LLAISYS_DEVICE_NVIDIA) {
        if (n)
            nvidia::copy_ids_behind(s.host, ids, n, &s.done);
        else
            nvidia::record_behind(&s.done);
    }
#endif
    if (device_ != LLAISYS_DEVICE_NVIDIA && n) std::memcpy(s.host, ids, n * sizeof(int64_t));
    s.ids = s.host, s.out = out, s.n = n;
    ++pending_;
}

void PendingIds::push_written(const int64_t *host_ids, size_t n, int64_t *out) {
    CHECK_ARG(device_ == LLAISYS_DEVICE_NVIDIA, "push_written: ids written by a GPU step");
    Slot &s = take_slot();
#ifdef LLAISYS_ENABLE_NVIDIA
    nvidia::record_behind(&s.done);
#endif
    s.ids = host_ids, s.out = out, s.n = n;
    ++pending_;
}

void PendingIds::wait_until(size_t max_pending) {
    while (pending_ > max_pending) {
        Slot &s = slots_[oldest_];
        oldest_ = (oldest_ + 1) % kSlots;
        --pending_;
#ifdef LLAISYS_ENABLE_NVIDIA
        if (device_ == LLAISYS_DEVICE_NVIDIA) {
            try {
                nvidia::wait_event(s.done);
            } catch (...) {
                pending_ = 0;
                throw;
            }
        }
#endif
        if (s.n) std::memcpy(s.out, s.ids, s.n * sizeof(int64_t));
    }
}

} // namespace llaisys::models
