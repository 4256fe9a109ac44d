"""Device runtime queries and CPU thread control."""

from __future__ import annotations

from .errors import check
from .libllaisys import LIB, llaisysDeviceType_t


def device_count(device: llaisysDeviceType_t) -> int:
    return LIB.llaisysDeviceCount(int(device))


def device_built(device: llaisysDeviceType_t) -> bool:
    return bool(LIB.llaisysDeviceBuilt(int(device)))


def set_num_threads(n: int) -> None:
    """CPU kernel threads (OpenMP and BLAS); n <= 0 restores the default (physical cores)."""
    check(LIB.llaisysSetNumThreads(int(n)))


def get_num_threads() -> int:
    return LIB.llaisysGetNumThreads()


def cpu_kernel_path() -> str:
    return LIB.llaisysCpuKernelPath().decode()
