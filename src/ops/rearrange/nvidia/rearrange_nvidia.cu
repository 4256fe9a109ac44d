#include "ops/rearrange/nvidia/rearrange_nvidia.hpp"

#include "device/nvidia/nvidia_common.cuh"
#include "llaisys/tensor.h"

namespace llaisys::ops::nvidia {

namespace {

using namespace device::nvidia;

struct Layout {
    int ndim;
    size_t shape[LLAISYS_MAX_NDIM];
    ptrdiff_t dst[LLAISYS_MAX_NDIM], src[LLAISYS_MAX_NDIM];
};

// A thread per element; W is an unsigned type of the element's size.
template <typename W> __global__ void rearrange_kernel(W *dst, const W *src, Layout l, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
         i += size_t(gridDim.x) * blockDim.x) {
        size_t rest = i;
        ptrdiff_t d = 0, s = 0;
        for (int k = l.ndim - 1; k >= 0; --k) {
            const size_t c = rest % l.shape[k];
            rest /= l.shape[k];
            d += ptrdiff_t(c) * l.dst[k];
            s += ptrdiff_t(c) * l.src[k];
        }
        dst[d] = src[s];
    }
}

template <typename W> void launch(std::byte *dst, const std::byte *src, const Layout &l, size_t n) {
    const unsigned grid = std::min(blocks_for(n, 256), 65535u);
    rearrange_kernel<<<grid, 256, 0, stream()>>>(reinterpret_cast<W *>(dst),
                                                 reinterpret_cast<const W *>(src), l, n);
}

} // namespace

void rearrange(std::byte *dst, const std::byte *src, const std::vector<size_t> &shape,
               const std::vector<ptrdiff_t> &dst_strides, const std::vector<ptrdiff_t> &src_strides,
               size_t elem_size) {
    Layout l{int(shape.size()), {}, {}, {}};
    size_t n = 1;
    for (size_t k = 0; k < shape.size(); ++k) {
        l.shape[k] = shape[k];
        l.dst[k] = dst_strides[k];
        l.src[k] = src_strides[k];
        n *= shape[k];
    }
    if (n == 0) return;
    switch (elem_size) {
    case 1:
        launch<uint8_t>(dst, src, l, n);
        break;
    case 2:
        launch<uint16_t>(dst, src, l, n);
        break;
    case 4:
        launch<uint32_t>(dst, src, l, n);
        break;
    case 8:
        launch<uint64_t>(dst, src, l, n);
        break;
    default:
        fail(LLAISYS_ERR_DTYPE, "rearrange: element size ", elem_size, " is not supported");
    }
    check_launch("rearrange");
}

} // namespace llaisys::ops::nvidia
