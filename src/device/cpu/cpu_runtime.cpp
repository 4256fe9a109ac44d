// CPU runtime: host memory is device memory; streams are no-ops.
#include "device/runtime.hpp"

#include <cstdlib>
#include <cstring>

namespace llaisys::device::cpu {

namespace {
int device_count() { return 1; }
void set_device(int) {}
void synchronize() {}
llaisysStream_t create_stream() { return nullptr; }
void destroy_stream(llaisysStream_t) {}
void stream_synchronize(llaisysStream_t) {}
// 64-byte alignment keeps every row start usable by aligned AVX-512 loads.
void *malloc_aligned(size_t size) { return std::aligned_alloc(64, (size + 63) / 64 * 64 + 64); }
void free_aligned(void *ptr) { std::free(ptr); }
void memcpy_sync(void *dst, const void *src, size_t size, llaisysMemcpyKind_t) {
    if (size) std::memcpy(dst, src, size);
}
void memcpy_async(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind,
                  llaisysStream_t) {
    memcpy_sync(dst, src, size, kind);
}

const LlaisysRuntimeAPI api = {device_count,   set_device,         synchronize,    create_stream,
                               destroy_stream, stream_synchronize, malloc_aligned, free_aligned,
                               malloc_aligned, free_aligned,       memcpy_sync,    memcpy_async};
} // namespace

const LlaisysRuntimeAPI *runtime_api() { return &api; }

} // namespace llaisys::device::cpu
