"""include/llaisys/llaisys.h and runtime.h."""

import ctypes

from .types import LlaisysRuntimeAPI


def declare(lib: ctypes.CDLL) -> None:
    lib.llaisysGetLastError.argtypes = []
    lib.llaisysGetLastError.restype = ctypes.c_char_p
    lib.llaisysDataTypeSize.argtypes = [ctypes.c_int]
    lib.llaisysDataTypeSize.restype = ctypes.c_size_t
    lib.llaisysDataTypeBlockElems.argtypes = [ctypes.c_int]
    lib.llaisysDataTypeBlockElems.restype = ctypes.c_size_t
    lib.llaisysGetRuntimeAPI.argtypes = [ctypes.c_int]
    lib.llaisysGetRuntimeAPI.restype = ctypes.POINTER(LlaisysRuntimeAPI)
    lib.llaisysDeviceCount.argtypes = [ctypes.c_int]
    lib.llaisysDeviceCount.restype = ctypes.c_int
    lib.llaisysDeviceBuilt.argtypes = [ctypes.c_int]
    lib.llaisysDeviceBuilt.restype = ctypes.c_int
    lib.llaisysDeviceMemoryInfo.argtypes = [ctypes.c_int, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_size_t),
                                             ctypes.POINTER(ctypes.c_size_t)]
    lib.llaisysDeviceMemoryInfo.restype = ctypes.c_int
    lib.llaisysSetNumThreads.argtypes = [ctypes.c_int]
    lib.llaisysSetNumThreads.restype = ctypes.c_int
    lib.llaisysGetNumThreads.argtypes = []
    lib.llaisysGetNumThreads.restype = ctypes.c_int
    lib.llaisysCpuKernelPath.argtypes = []
    lib.llaisysCpuKernelPath.restype = ctypes.c_char_p
