"""include/llaisys/tensor.h."""

import ctypes

from .types import c_size_p

llaisysTensor_t = ctypes.c_void_p  # noqa: N816 - mirrors the C name


def declare(lib: ctypes.CDLL) -> None:
    T = llaisysTensor_t
    out = ctypes.POINTER(T)
    lib.tensorCreate.argtypes = [c_size_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, out]
    lib.tensorCreate.restype = ctypes.c_int
    lib.tensorDestroy.argtypes = [T]
    lib.tensorDestroy.restype = None
    lib.tensorGetData.argtypes = [T]
    lib.tensorGetData.restype = ctypes.c_void_p
    lib.tensorGetNdim.argtypes = [T]
    lib.tensorGetNdim.restype = ctypes.c_size_t
    lib.tensorGetShape.argtypes = [T, c_size_p]
    lib.tensorGetShape.restype = None
    lib.tensorGetStrides.argtypes = [T, ctypes.POINTER(ctypes.c_ssize_t)]
    lib.tensorGetStrides.restype = None
    lib.tensorGetDataType.argtypes = [T]
    lib.tensorGetDataType.restype = ctypes.c_int
    lib.tensorGetDeviceType.argtypes = [T]
    lib.tensorGetDeviceType.restype = ctypes.c_int
    lib.tensorGetDeviceId.argtypes = [T]
    lib.tensorGetDeviceId.restype = ctypes.c_int
    lib.tensorIsContiguous.argtypes = [T]
    lib.tensorIsContiguous.restype = ctypes.c_int
    lib.tensorLoad.argtypes = [T, ctypes.c_void_p]
    lib.tensorLoad.restype = ctypes.c_int
    lib.tensorRead.argtypes = [T, ctypes.c_void_p]
    lib.tensorRead.restype = ctypes.c_int
    lib.tensorView.argtypes = [T, c_size_p, ctypes.c_size_t, out]
    lib.tensorView.restype = ctypes.c_int
    lib.tensorPermute.argtypes = [T, c_size_p, out]
    lib.tensorPermute.restype = ctypes.c_int
    lib.tensorSlice.argtypes = [T, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, out]
    lib.tensorSlice.restype = ctypes.c_int
    lib.tensorContiguous.argtypes = [T, out]
    lib.tensorContiguous.restype = ctypes.c_int
    lib.tensorDebug.argtypes = [T]
    lib.tensorDebug.restype = ctypes.c_int
