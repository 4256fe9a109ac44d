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
}

PendingIds::~PendingIds() {
#ifdef LLAISYS_ENABLE_NVIDIA
    if (device_ == LLAISYS_DEVICE_NVIDIA) {
        if (pending_) nvidia::wait_stream();
        for (Slot &s : slots_) {
            nvidia::free_pinned(s.host);
            nvidia::destroy_event(s.done);
        }
        return;
    }
#endif
    for (Slot &s : slots_) delete[] s.host;
}

void PendingIds::push(const int64_t *ids, size_t n, int64_t *out) {
    if (pending_ == kSlots) wait_until(kSlots - 1);
    Slot &s = slots_[(oldest_ + pending_) % kSlots];
    const bool gpu = device_ == LLAISYS_DEVICE_NVIDIA;
    if (n > s.capacity) {
        const size_t grown = std::max<size_t>(n, 256);
#ifdef LLAISYS_ENABLE_NVIDIA
        if (gpu) {
            nvidia::free_pinned(s.host);
            s.host = nullptr, s.capacity = 0;
            s.host = nvidia::alloc_pinned_ids(grown);
        }
#endif
        if (!gpu) {
            delete[] s.host;
            s.host = new int64_t[grown];
        }
        s.capacity = grown;
    }
#ifdef LLAISYS_ENABLE_NVIDIA
    if (gpu) {
        if (n)
            nvidia::copy_ids_behind(s.host, ids, n, &s.done);
        else
            nvidia::record_behind(&s.done);
    }
#endif
    if (!gpu && n) std::memcpy(s.host, ids, n * sizeof(int64_t));
    s.out = out, s.n = n;
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
        if (s.n) std::memcpy(s.out, s.host, s.n * sizeof(int64_t));
    }
}

} // namespace llaisys::models
