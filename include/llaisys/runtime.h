/*
 * runtime.h - the per-device runtime API table (memory, copies, streams).
 *
 * Each device type has one table. The CPU table is always present; the NVIDIA table
 * exists when the library was built with CUDA (llaisysDeviceAvailable tells).
 */
#ifndef LLAISYS_RUNTIME_H
#define LLAISYS_RUNTIME_H

#include "llaisys.h"

typedef void *llaisysStream_t;

typedef enum llaisysMemcpyKind {
    LLAISYS_MEMCPY_H2H = 0,
    LLAISYS_MEMCPY_H2D = 1,
    LLAISYS_MEMCPY_D2H = 2,
    LLAISYS_MEMCPY_D2D = 3
} llaisysMemcpyKind_t;

typedef struct LlaisysRuntimeAPI {
    int (*get_device_count)(void);
    void (*set_device)(int device_id);
    void (*device_synchronize)(void);
    llaisysStream_t (*create_stream)(void);
    void (*destroy_stream)(llaisysStream_t stream);
    void (*stream_synchronize)(llaisysStream_t stream);
    /* Device memory; returns NULL when out of memory. */
    void *(*malloc_device)(size_t size);
    void (*free_device)(void *ptr);
    /* Pinned host memory (plain host memory on CPU). */
    void *(*malloc_host)(size_t size);
    void (*free_host)(void *ptr);
    void (*memcpy_sync)(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind);
    void (*memcpy_async)(void *dst, const void *src, size_t size, llaisysMemcpyKind_t kind,
                         llaisysStream_t stream);
} LlaisysRuntimeAPI;

/* Runtime table of a device type; NULL (and last error set) when that backend is not
 * built into this library. */
__C LLAISYS_API const LlaisysRuntimeAPI *llaisysGetRuntimeAPI(llaisysDeviceType_t device);

/* Number of devices of that type present (0 when not built or none present). */
__C LLAISYS_API int llaisysDeviceCount(llaisysDeviceType_t device);

/* Device memory of one device in bytes: free (what the driver reports free plus the
 * blocks this library's allocator caches) and total. NVIDIA only; the CPU table has no
 * such query (LLAISYS_ERR_DEVICE). */
__C LLAISYS_API llaisysStatus_t llaisysDeviceMemoryInfo(llaisysDeviceType_t device, int device_id,
                                                        size_t *free_bytes, size_t *total_bytes);

/* 1 when the library was built with this backend, else 0. */
__C LLAISYS_API int llaisysDeviceBuilt(llaisysDeviceType_t device);

/* Number of CPU threads the kernels use (OpenMP); n <= 0 restores the default
 * (physical cores). */
__C LLAISYS_API llaisysStatus_t llaisysSetNumThreads(int n);
__C LLAISYS_API int llaisysGetNumThreads(void);

/* Name of the CPU kernel path chosen at run time: "avx512", "avx2" or "generic". */
__C LLAISYS_API const char *llaisysCpuKernelPath(void);

#endif /* LLAISYS_RUNTIME_H */
