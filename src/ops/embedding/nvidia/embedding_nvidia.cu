#include "ops/embedding/nvidia/embedding_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"

#include <vector>

namespace llaisys::ops::nvidia {

using namespace device::nvidia;

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
    const std::byte *src = weight;
    move_rows<false>(&out, &src, &row_bytes, 1, index, n, "embedding");
}

} // namespace llaisys::ops::nvidia
