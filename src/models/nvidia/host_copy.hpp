// Device-to-host copies the host reads later: pinned buffers, copies queued behind the work
// on the compute stream, and events to wait for one copy without waiting for later work.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llaisys::models::nvidia {

int64_t *alloc_pinned_ids(size_t n);
void free_pinned(void *p);
// Queues the copy of n ids behind the work queued so far and records *event after it (an
// event is created on first use).
void copy_ids_behind(int64_t *dst, const int64_t *src, size_t n, void **event);
// Records *event behind the work queued so far (created on first use).
void record_behind(void **event);
void wait_event(void *event);
void destroy_event(void *event);
void wait_stream();

} // namespace llaisys::models::nvidia
