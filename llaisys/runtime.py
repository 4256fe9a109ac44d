"""Device runtime queries and CPU thread control."""

from __future__ import annotations

import ctypes

from .errors import check
from .libllaisys import LIB, llaisysDeviceType_t


def device_count(device: llaisysDeviceType_t) -> int:
    return LIB.llaisysDeviceCount(int(device))


def device_built(device: llaisysDeviceType_t) -> bool:
    return bool(LIB.llaisysDeviceBuilt(int(device)))


def device_memory(device: llaisysDeviceType_t, device_id: int = 0) -> tuple[int, int]:
    """(free, total) bytes of a GPU; free counts the blocks the core's allocator caches."""
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    check(LIB.llaisysDeviceMemoryInfo(int(device), device_id, ctypes.byref(free),
                                      ctypes.byref(total)))
    return free.value, total.value


def set_num_threads(n: int) -> None:
    """CPU kernel threads (OpenMP; sgemm runs single-threaded inside them); n <= 0 restores
    the default (physical cores)."""
    check(LIB.llaisysSetNumThreads(int(n)))


def get_num_threads() -> int:
    return LIB.llaisysGetNumThreads()


def cpu_kernel_path() -> str:
    return LIB.llaisysCpuKernelPath().decode()
