// A graph decode step's metadata in, and its sampled ids out, through pinned host memory
// the GPU maps (zero-copy). The graph's first kernel copies the step's metadata from the
// host to its device buffers and its last kernel writes the ids to the host, so a step is the
// graph launch alone: its eight small H2D copies and one D2H copy each switched the stream
// between the copy and compute engines (on the H200 ~12 us of a 1.4 ms single-stream step).
//
// Slots rotate, one more than LLAISYS_MAX_PENDING_DECODES: when the host stages a step, the
// step that used its slot before has been waited for. The device keeps the next slot's index
// itself (its first kernel reads and advances it), so captured graphs stay valid for every
// slot; the host counts along and asks the device after a failed step.
#pragma once

#include "llaisys/model.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace llaisys::models::nvidia {

class StepMailbox {
public:
    // bytes at src (a multiple of 4) go to dst on the device (16-byte aligned).
    struct Segment {
        void *dst;
        const void *src;
        size_t bytes;
    };
    static constexpr size_t kMaxSegments = 8;
    static constexpr size_t kSlots = LLAISYS_MAX_PENDING_DECODES + 1;

    StepMailbox() = default;
    StepMailbox(const StepMailbox &) = delete;
    StepMailbox &operator=(const StepMailbox &) = delete;
    ~StepMailbox(); // waits for the stream: queued steps may still read the slots

    // Whether a step of these segments and max_ids ids fits the slots as they are. If not,
    // reserve() reallocates them; nothing in flight may use them then.
    bool fits(const std::vector<Segment> &segments, size_t max_ids) const;
    void reserve(const std::vector<Segment> &segments, size_t max_ids);
    // Writes the segments (at most kMaxSegments) into the next slot; returns the host address
    // its ids will reach.
    const int64_t *stage(const std::vector<Segment> &segments);
    // Launches the kernel that copies the staged slot's segments to their destinations (the
    // step's first) and the one that writes n ids to the slot's ids (its last).
    void fetch() const;
    void publish(const int64_t *ids, size_t n) const;
    // After a failed step: waits for the stream and takes the device's slot index.
    void resync();
    // What a graph that fetches and publishes through these slots captured.
    std::vector<const void *> buffers() const { return {slots_, state_}; }

private:
    // A slot's bytes after its header: max_ids ids and the segments.
    static size_t slot_bytes_for(const std::vector<Segment> &segments, size_t max_ids);
    std::byte *slots_ = nullptr; // kSlots headers, then kSlots * slot_bytes_; pinned, mapped
    size_t slot_bytes_ = 0, max_ids_ = 0;
    void *state_ = nullptr; // device: the slot the next fetch reads, where its ids go
    size_t next_ = 0;       // the slot the host stages next
};

} // namespace llaisys::models::nvidia
