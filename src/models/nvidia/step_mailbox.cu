#include "models/nvidia/step_mailbox.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <algorithm>
#include <cstring>

namespace llaisys::models::nvidia {

using namespace device::nvidia;

namespace {

constexpr int kSlots = int(StepMailbox::kSlots);

// A slot: this header, then room for max_ids ids, then the segments' bytes, each padded to 16.
struct SegmentCopy {
    uint64_t dst;
    uint32_t src; // from the slot's start
    uint32_t bytes;
};
struct Header {
    uint32_t n_segments, unused[3];
    SegmentCopy segments[StepMailbox::kMaxSegments];
};
constexpr size_t kHeaderBytes = 256;
static_assert(sizeof(Header) <= kHeaderBytes && sizeof(Header) % 4 == 0);

size_t round16(size_t bytes) { return (bytes + 15) / 16 * 16; }
size_t data_offset(size_t max_ids) { return kHeaderBytes + round16(max_ids * sizeof(int64_t)); }

constexpr int kFetchThreads = 1024, kFetchUnroll = 4;

// One block: host reads are latency (~1-2 us a round trip over PCIe), so every slot's header
// is read along with the slot index, and each thread issues its loads before any store.
__global__ void __launch_bounds__(kFetchThreads)
    fetch_step_kernel(const std::byte *slots, size_t slot_bytes, int *state) {
    allow_dependents_early(); // they wait for this grid before reading what it writes
    constexpr int kWords = sizeof(Header) / 4;
    __shared__ Header headers[kSlots];
    __shared__ int slot;
    if (threadIdx.x < kSlots * kWords) {
        const int s = int(threadIdx.x) / kWords, w = int(threadIdx.x) % kWords;
        reinterpret_cast<uint32_t *>(&headers[s])[w] =
            __ldcv(reinterpret_cast<const unsigned *>(slots + s * slot_bytes) + w);
    }
    if (threadIdx.x == 0) {
        slot = state[0];
        state[0] = (slot + 1) % kSlots;
        state[1] = slot;
    }
    __syncthreads();
    const Header &h = headers[slot];
    const std::byte *src = slots + size_t(slot) * slot_bytes;
    uint32_t units = 0; // of 16 bytes
    for (uint32_t k = 0; k < h.n_segments; ++k) units += (h.segments[k].bytes + 15) / 16;
    for (uint32_t first = 0; first < units; first += kFetchThreads * kFetchUnroll) {
        uint4 v[kFetchUnroll];
        uint4 *dst[kFetchUnroll];
#pragma unroll
        for (int u = 0; u < kFetchUnroll; ++u) {
            uint32_t i = first + u * kFetchThreads + threadIdx.x;
            dst[u] = nullptr;
            if (i >= units) continue;
            uint32_t k = 0;
            for (; i >= (h.segments[k].bytes + 15) / 16; ++k) i -= (h.segments[k].bytes + 15) / 16;
            v[u] = __ldcv(reinterpret_cast<const uint4 *>(src + h.segments[k].src) + i);
            dst[u] = reinterpret_cast<uint4 *>(h.segments[k].dst) + i;
        }
#pragma unroll
        for (int u = 0; u < kFetchUnroll; ++u)
            if (dst[u]) *dst[u] = v[u];
    }
}

__global__ void publish_ids_kernel(std::byte *slots, size_t slot_bytes, const int *state,
                                   const int64_t *ids, int n) {
    wait_for_prior_grid();
    int64_t *out =
        reinterpret_cast<int64_t *>(slots + size_t(state[1]) * slot_bytes + kHeaderBytes);
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
    size_t bytes = data_offset(max_ids);
    for (const Segment &s : segments) bytes += round16(s.bytes);
    return bytes;
}

bool StepMailbox::fits(const std::vector<Segment> &segments, size_t max_ids) const {
    return slots_ && max_ids <= max_ids_ && slot_bytes_for(segments, max_ids_) <= slot_bytes_;
}

void StepMailbox::reserve(const std::vector<Segment> &segments, size_t max_ids) {
    CHECK_ARG(segments.size() <= kMaxSegments, "step mailbox: ", segments.size(), " segments");
    if (slots_) {
        check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
        cudaFreeHost(slots_);
        slots_ = nullptr;
    }
    max_ids_ = std::max(max_ids, max_ids_);
    // Grown with room to spare: block tables widen as sequences grow.
    slot_bytes_ = std::max(slot_bytes_for(segments, max_ids_), 2 * slot_bytes_);
    void *p = nullptr;
    check_cuda(cudaHostAlloc(&p, kSlots * slot_bytes_, cudaHostAllocMapped), "cudaHostAlloc");
    slots_ = static_cast<std::byte *>(p);
    if (!state_)
        check_cuda(cudaMalloc(reinterpret_cast<void **>(&state_), 2 * sizeof(int)), "cudaMalloc");
    check_cuda(cudaMemsetAsync(state_, 0, 2 * sizeof(int), stream()), "cudaMemsetAsync");
    next_ = 0;
}

const int64_t *StepMailbox::stage(const std::vector<Segment> &segments) {
    std::byte *slot = slots_ + next_ * slot_bytes_;
    next_ = (next_ + 1) % kSlots;
    Header h{};
    h.n_segments = uint32_t(segments.size());
    size_t at = data_offset(max_ids_);
    for (size_t k = 0; k < segments.size(); ++k) {
        const Segment &s = segments[k];
        h.segments[k] = {reinterpret_cast<uint64_t>(s.dst), uint32_t(at), uint32_t(s.bytes)};
        std::memcpy(slot + at, s.src, s.bytes);
        at += round16(s.bytes);
    }
    std::memcpy(slot, &h, sizeof(h));
    return reinterpret_cast<const int64_t *>(slot + kHeaderBytes);
}

void StepMailbox::fetch() const {
    fetch_step_kernel<<<1, kFetchThreads, 0, stream()>>>(slots_, slot_bytes_, state_);
    check_launch("step mailbox fetch");
}

void StepMailbox::publish(const int64_t *ids, size_t n) const {
    launch_dependent("step mailbox publish", publish_ids_kernel, 1, 256, 0, slots_, slot_bytes_,
                     static_cast<const int *>(state_), ids, int(n));
}

void StepMailbox::resync() {
    if (!state_) return;
    int next = 0;
    check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    check_cuda(cudaMemcpy(&next, state_, sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
    next_ = size_t(next);
}

} // namespace llaisys::models::nvidia
