// NVIDIA runtime: the CUDA runtime API behind the device table. Failures other than an
// allocation running out of memory throw llaisys::Error (LLAISYS_ERR_DEVICE); the table
// is called from C++ code that sits inside an api_guard.
#include "device/nvidia/nvidia_common.cuh"
#include "device/runtime.hpp"

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace llaisys::device::nvidia {

namespace {

cudaMemcpyKind cuda_kind(llaisysMemcpyKind_t kind) {
    switch (kind) {
    case LLAISYS_MEMCPY_H2H:
        return cudaMemcpyHostToHost;
    case LLAISYS_MEMCPY_H2D:
        return cudaMemcpyHostToDevice;
    case LLAISYS_MEMCPY_D2H:
        return cudaMemcpyDeviceToHost;
    case LLAISYS_MEMCPY_D2D:
        return cudaMemcpyDeviceToDevice;
    }
    fail(LLAISYS_ERR_INVALID_ARGUMENT, "memcpy: unknown kind ", int(kind));
}

// No driver or no GPU is "zero devices", not an error: CPU-only machines ask too.
int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky status of the failed query
        return 0;
    }
    return n;
}

void set_device(int device_id) { check_cuda(cudaSetDevice(device_id), "cudaSetDevice"); }

void synchronize() { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

llaisysStream_t create_stream() {
    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    return stream;
}

void destroy_stream(llaisysStream_t stream) {
    if (stream) check_cuda(cudaStreamDestroy(cudaStream_t(stream)), "cudaStreamDestroy");
}

void stream_synchronize(llaisysStream_t stream) {
    check_cuda(cudaStreamSynchronize(cudaStream_t(stream)), "cudaStreamSynchronize");
}

// A caching allocator: freed blocks stay with their device, keyed by rounded size, and
// serve later requests of that size without cudaMalloc/cudaFree (which synchronise the
// device). All work runs on one stream, so a block freed on the host may be handed out
// again at once: the new owner's kernels are queued after the old owner's. When
// cudaMalloc runs out of memory the cached blocks of that device are released and it is
// tried once more. The pools are never destroyed: tensors freed at process exit, after
// the CUDA runtime unloads, only go back to a pool.
struct Pool {
    std::multimap<size_t, void *> free;
    std::unordered_map<void *, size_t> size_of; // every block this pool handed out
};

std::mutex pool_mutex;
std::vector<Pool> &pools() {
    static auto *p = new std::vector<Pool>();
    return *p;
}

size_t rounded(size_t size) {
    const size_t small = 512, large = size_t(2) << 20;
    return size <= (size_t(1) << 20) ? (std::max<size_t>(size, 1) + small - 1) / small * small
                                     : (size + large - 1) / large * large;
}

Pool &current_pool() {
    int dev = 0;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    if (size_t(dev) >= pools().size()) pools().resize(size_t(dev) + 1);
    return pools()[size_t(dev)];
}

// Out of memory is a NULL result (runtime.h); the error is cleared so later calls work.
void *malloc_device(size_t size) {
    const size_t bytes = rounded(size);
    std::lock_guard<std::mutex> lock(pool_mutex);
    Pool &pool = current_pool();
    auto hit = pool.free.find(bytes);
    if (hit != pool.free.end()) {
        void *ptr = hit->second;
        pool.free.erase(hit);
        return ptr;
    }
    void *ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        for (const auto &[sz, p] : pool.free) {
            pool.size_of.erase(p);
            check_cuda(cudaFree(p), "cudaFree");
        }
        pool.free.clear();
        err = cudaMalloc(&ptr, bytes);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            return nullptr;
        }
    }
    check_cuda(err, "cudaMalloc");
    pool.size_of.emplace(ptr, bytes);
    return ptr;
}

// No CUDA call: the pool that handed the block out takes it back.
void free_device(void *ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(pool_mutex);
    for (Pool &pool : pools()) {
        auto it = pool.size_of.find(ptr);
        if (it != pool.size_of.end()) return void(pool.free.emplace(it->second, ptr));
    }
    fail(LLAISYS_ERR_DEVICE, "free_device: pointer ", ptr, " was not allocated here");
}

void *malloc_host(size_t size) {
    void *ptr = nullptr;
    cudaError_t err = cudaMallocHost(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return nullptr;
    }
    check_cuda(err, "cudaMallocHost");
    return ptr;
}

void free_host(void *ptr) {
    if (ptr) check_cuda(cudaFreeHost(ptr), "cudaFreeHost");
}

// On the device's stream, so the copy is ordered after the kernels queued before it and
// before those queued after it. From pageable host memory to the device, the call returns
// once the source is staged, so there is nothing to wait for: a decode step's metadata
// uploads cost no synchronisation. Other copies (and sources in pinned memory, which the
// DMA reads later) wait for the stream.
void memcpy_sync(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind) {
    if (!size) return;
    check_cuda(cudaMemcpyAsync(dst, src, size, cuda_kind(kind), stream()), "cudaMemcpyAsync");
    if (kind == LLAISYS_MEMCPY_H2D) {
        cudaPointerAttributes attr{};
        check_cuda(cudaPointerGetAttributes(&attr, src), "cudaPointerGetAttributes");
        if (attr.type == cudaMemoryTypeUnregistered) return;
    }
    check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}

void memcpy_async(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind,
                  llaisysStream_t stream) {
    if (size)
        check_cuda(cudaMemcpyAsync(dst, src, size, cuda_kind(kind), cudaStream_t(stream)),
                   "cudaMemcpyAsync");
}

const LlaisysRuntimeAPI api = {device_count,   set_device,         synchronize,   create_stream,
                               destroy_stream, stream_synchronize, malloc_device, free_device,
                               malloc_host,    free_host,          memcpy_sync,   memcpy_async};

} // namespace

const LlaisysRuntimeAPI *runtime_api() { return &api; }

cudaStream_t stream() {
    static std::mutex mutex;
    static auto *streams = new std::vector<cudaStream_t>();
    int dev = 0;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mutex);
    if (size_t(dev) >= streams->size()) streams->resize(size_t(dev) + 1, nullptr);
    cudaStream_t &s = (*streams)[size_t(dev)];
    if (!s) check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    return s;
}

bool dependent_launch_allowed(const void *kernel) {
    static std::mutex mutex;
    static auto *allowed = new std::map<std::pair<int, const void *>, bool>();
    int dev = 0;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    std::lock_guard<std::mutex> lock(mutex);
    auto [it, fresh] = allowed->try_emplace({dev, kernel}, false);
    if (fresh) {
        int major = 0;
        check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
                   "cudaDeviceGetAttribute");
        cudaFuncAttributes attr{};
        check_cuda(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
        it->second = major >= 9 && attr.ptxVersion >= 90;
    }
    return it->second;
}

void memory_info(int device_id, size_t *free_bytes, size_t *total_bytes) {
    set_device(device_id);
    check_cuda(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
    std::lock_guard<std::mutex> lock(pool_mutex);
    Pool &pool = current_pool();
    for (const auto &[bytes, ptr] : pool.free) *free_bytes += bytes;
}

} // namespace llaisys::device::nvidia
