#include "ops/embedding/nvidia/embedding_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <vector>

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

// One block per row; 16-byte words when the row allows it.
template <typename W>
__global__ void gather_kernel(W *out, const int64_t *index, const W *weight, size_t words) {
    const W *src = weight + size_t(index[blockIdx.x]) * words;
    W *dst = out + size_t(blockIdx.x) * words;
    for (size_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
}

} // namespace

void embedding(std::byte *out, const int64_t *index, const std::byte *weight, size_t n,
               size_t vocab, size_t row_bytes) {
    if (n == 0) return;
    // The ids are checked on the host: a few bytes against a silent out-of-bounds read.
    // Not while a decode step is being captured as a graph: no copy may run then, and the
    // decoder has checked its token ids already.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    check_cuda(cudaStreamIsCapturing(stream(), &capturing), "cudaStreamIsCapturing");
    if (capturing == cudaStreamCaptureStatusNone) {
        std::vector<int64_t> ids(n);
        check_cuda(cudaMemcpyAsync(ids.data(), index, n * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                   stream()),
                   "embedding: index copy");
        check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
        for (size_t i = 0; i < n; ++i)
            CHECK_ARG(ids[i] >= 0 && uint64_t(ids[i]) < vocab, "embedding: index ", ids[i], " at ",
                      i, " out of range [0, ", vocab, ")");
    }
    if (row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0 &&
        reinterpret_cast<uintptr_t>(weight) % 16 == 0)
        gather_kernel<<<unsigned(n), 128, 0, stream()>>>(reinterpret_cast<int4 *>(out), index,
                                                         reinterpret_cast<const int4 *>(weight),
                                                         row_bytes / 16);
    else
        gather_kernel<<<unsigned(n), 128, 0, stream()>>>(
            reinterpret_cast<unsigned char *>(out), index,
            reinterpret_cast<const unsigned char *>(weight), row_bytes);
    check_launch("embedding");
}

} // namespace llaisys::ops::nvidia
