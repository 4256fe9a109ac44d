#include "models/nvidia/step_mailbox.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <algorithm>
#include <cstring>

namespace llaisys::models::nvidia {

using namespace device::nvidia;

namespace {

constexpr int kSlots = int(StepMailbox::kSlots);

// The slots' headers come first, at fixed places, then each slot's room for max_ids ids and
// its segments' bytes, each padded to 16; offsets count from the allocation's start. A graph
// captures only the allocation and the state: what a slot holds is read from its header, so
// a graph captured before the slots were reallocated (the new allocation may reuse the
// address) still reads them right.
struct SegmentCopy {
    uint64_t dst;
    uint32_t src;
    uint32_t bytes;
};
struct Header {
    uint32_t n_segments, ids, unused[2];
    SegmentCopy segments[StepMailbox::kMaxSegments];
};
constexpr size_t kHeaderBytes = 256;
static_assert(sizeof(Header) <= kHeaderBytes && sizeof(Header) % 4 == 0);

struct State {
    int next;     // the slot the next fetch reads
    int64_t *ids; // where the step being run leaves its ids (host memory)
};

size_t round16(size_t bytes) { return (bytes + 15) / 16 * 16; }

constexpr int kFetchThreads = 1024, kFetchUnroll = 4;

// One block: host reads are latency (~1-2 us a round trip over PCIe), so every slot's header
// is read along with the slot index, and each thread issues its loads before any store.
__global__ void __launch_bounds__(kFetchThreads) fetch_step_kernel(std::byte *slots, State *state) {
    allow_dependents_early(); // they wait for this grid before reading what it writes
    constexpr int kWords = sizeof(Header) / 4;
    __shared__ Header headers[kSlots];
    __shared__ int slot;
    if (threadIdx.x < kSlots * kWords)
        reinterpret_cast<uint32_t *>(headers)[threadIdx.x] =
            __ldcv(reinterpret_cast<const unsigned *>(slots + threadIdx.x / kWords * kHeaderBytes) +
                   threadIdx.x % kWords);
    if (threadIdx.x == 0) slot = state->next;
    __syncthreads();
    const Header &h = headers[slot];
    if (threadIdx.x == 0) {
        state->next = (slot + 1) % kSlots;
        state->ids = reinterpret_cast<int64_t *>(slots + h.ids);
    }
    uint32_t units = 0; // of 16 bytes
    for (uint32_t k = 0; k < h.n_segments; ++k) units += (h.segments[k].bytes + 15) / 16;
    for (uint32_t first = 0; first < units; first += kFetchThreads * kFetchUnroll) {
        uint4 v[kFetchUnroll];
        uint4 *dst[kFetchUnroll];
        uint32_t words[kFetchUnroll]; // of 4 bytes to store: 4, or fewer in a segment's tail
#pragma unroll
        for (int u = 0; u < kFetchUnroll; ++u) {
            uint32_t i = first + u * kFetchThreads + threadIdx.x;
            dst[u] = nullptr, words[u] = 0;
            if (i >= units) continue;
            uint32_t k = 0;
            for (; i >= (h.segments[k].bytes + 15) / 16; ++k) i -= (h.segments[k].bytes + 15) / 16;
            v[u] = __ldcv(reinterpret_cast<const uint4 *>(slots + h.segments[k].src) + i);
            dst[u] = reinterpret_cast<uint4 *>(h.segments[k].dst) + i;
            words[u] = min(4u, (h.segments[k].bytes - i * 16) / 4);
        }
#pragma unroll
        for (int u = 0; u < kFetchUnroll; ++u) {
            uint32_t *d = reinterpret_cast<uint32_t *>(dst[u]);
            if (words[u] == 4) {
                *dst[u] = v[u];
            } else { // named words, not an index into v[u]: that would put v in local memory
                if (words[u] > 0) d[0] = v[u].x;
                if (words[u] > 1) d[1] = v[u].y;
                if (words[u] > 2) d[2] = v[u].z;
            }
        }
    }
}

__global__ void publish_ids_kernel(const State *state, const int64_t *ids, int n) {
    wait_for_prior_grid();
    int64_t *out = state->ids;
    for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) out[i] = ids[i];
}

} // namespace

StepMailbox::~StepMailbox() {
    if (!slots_) return;
    cudaStreamSynchronize(stream()); // from a destructor: errors are not thrown
    cudaFreeHost(slots_);
    cudaFree(state_);
}

size_t StepMailbox::slot_bytes_for(const std::vector<Segment> &segments, size_t max_ids) {
    size_t bytes = round16(max_ids * sizeof(int64_t));
    for (const Segment &s : segments) bytes += round16(s.bytes);
    return bytes;
}

bool StepMailbox::fits(const std::vector<Segment> &segments, size_t max_ids) const {
    return slots_ && max_ids <= max_ids_ && slot_bytes_for(segments, max_ids_) <= slot_bytes_;
}

void StepMailbox::reserve(const std::vector<Segment> &segments, size_t max_ids) {
    if (slots_) {
        check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
        cudaFreeHost(slots_);
        slots_ = nullptr;
    }
    max_ids_ = std::max(max_ids, max_ids_);
    // Grown with room to spare: block tables widen as sequences grow.
    slot_bytes_ = std::max(slot_bytes_for(segments, max_ids_), 2 * slot_bytes_);
    void *p = nullptr;
    check_cuda(cudaHostAlloc(&p, kSlots * (kHeaderBytes + slot_bytes_), cudaHostAllocMapped),
               "cudaHostAlloc");
    slots_ = static_cast<std::byte *>(p);
    if (!state_) check_cuda(cudaMalloc(&state_, sizeof(State)), "cudaMalloc");
    check_cuda(cudaMemsetAsync(state_, 0, sizeof(State), stream()), "cudaMemsetAsync");
    next_ = 0;
}

const int64_t *StepMailbox::stage(const std::vector<Segment> &segments) {
    CHECK_ARG(segments.size() <= kMaxSegments, "step mailbox: ", segments.size(), " segments");
    for (const Segment &s : segments)
        CHECK_ARG(reinterpret_cast<uintptr_t>(s.dst) % 16 == 0 && s.bytes % 4 == 0,
                  "step mailbox: a segment's destination must be 16-byte aligned and its size a "
                  "multiple of 4 bytes");
    const size_t slot = kSlots * kHeaderBytes + next_ * slot_bytes_;
    Header h{};
    h.n_segments = uint32_t(segments.size());
    h.ids = uint32_t(slot);
    size_t at = slot + round16(max_ids_ * sizeof(int64_t));
    for (size_t k = 0; k < segments.size(); ++k) {
        const Segment &s = segments[k];
        h.segments[k] = {reinterpret_cast<uint64_t>(s.dst), uint32_t(at), uint32_t(s.bytes)};
        std::memcpy(slots_ + at, s.src, s.bytes);
        at += round16(s.bytes);
    }
    std::memcpy(slots_ + next_ * kHeaderBytes, &h, sizeof(h));
    next_ = (next_ + 1) % kSlots;
    return reinterpret_cast<const int64_t *>(slots_ + slot);
}

void StepMailbox::fetch() const {
    fetch_step_kernel<<<1, kFetchThreads, 0, stream()>>>(slots_, static_cast<State *>(state_));
    check_launch("step mailbox fetch");
}

void StepMailbox::publish(const int64_t *ids, size_t n) const {
    launch_dependent("step mailbox publish", publish_ids_kernel, 1, 256, 0,
                     static_cast<const State *>(state_), ids, int(n));
}

void StepMailbox::resync() {
    if (!state_) return;
    State state{};
    check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    check_cuda(cudaMemcpy(&state, state_, sizeof(State), cudaMemcpyDeviceToHost), "cudaMemcpy");
    next_ = size_t(state.next);
}

} // namespace llaisys::models::nvidia
