"""Tensor: a Python handle over a core tensor, with numpy in and out."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from .errors import check
from .libllaisys import LIB, llaisysDataType_t, llaisysDeviceType_t
from .libllaisys.tensor import llaisysTensor_t

DataType = llaisysDataType_t
DeviceType = llaisysDeviceType_t

# numpy has no bfloat16: BF16 tensors exchange raw uint16 bit patterns.
_NUMPY_OF = {
    DataType.F32: np.dtype(np.float32),
    DataType.F16: np.dtype(np.float16),
    DataType.BF16: np.dtype(np.uint16),
    DataType.I32: np.dtype(np.int32),
    DataType.I64: np.dtype(np.int64),
    DataType.I8: np.dtype(np.int8),
    DataType.U8: np.dtype(np.uint8),
}
_DTYPE_OF = {
    np.dtype(np.float32): DataType.F32,
    np.dtype(np.float16): DataType.F16,
    np.dtype(np.int32): DataType.I32,
    np.dtype(np.int64): DataType.I64,
    np.dtype(np.int8): DataType.I8,
    np.dtype(np.uint8): DataType.U8,
}


def _sizes(values: Sequence[int]) -> ctypes.Array:
    return (ctypes.c_size_t * max(len(values), 1))(*values)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Rounds float32 values to bfloat16 (nearest even), returned as uint16 bits."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (np.ascontiguousarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


class Tensor:
    """Owns one core tensor handle; views share the core storage."""

    def __init__(self, handle: int):
        if not handle:
            raise ValueError("null tensor handle")
        self._handle = llaisysTensor_t(handle)

    @classmethod
    def empty(
        cls,
        shape: Sequence[int],
        dtype: DataType = DataType.F32,
        device: DeviceType = DeviceType.CPU,
        device_id: int = 0,
    ) -> Tensor:
        out = llaisysTensor_t()
        shape = [int(s) for s in shape]
        check(LIB.tensorCreate(_sizes(shape), len(shape), int(dtype), int(device), device_id,
                               ctypes.byref(out)))
        return cls(out.value)

    @classmethod
    def from_numpy(
        cls,
        array: np.ndarray,
        dtype: DataType | None = None,
        device: DeviceType = DeviceType.CPU,
        device_id: int = 0,
    ) -> Tensor:
        """Copies a numpy array; dtype=BF16 rounds float input or takes uint16 bits."""
        array = np.asarray(array)
        if dtype is None:
            if array.dtype not in _DTYPE_OF:
                raise TypeError(f"no llaisys dtype for numpy {array.dtype}")
            dtype = _DTYPE_OF[array.dtype]
        if dtype == DataType.BF16 and array.dtype != np.uint16:
            array = f32_to_bf16_bits(array)
        array = np.ascontiguousarray(array, dtype=_NUMPY_OF[dtype])
        t = cls.empty(array.shape, dtype, device, device_id)
        t.load(array)
        return t

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            LIB.tensorDestroy(handle)
            self._handle = None

    @property
    def handle(self) -> llaisysTensor_t:
        return self._handle

    @property
    def ndim(self) -> int:
        return LIB.tensorGetNdim(self._handle)

    @property
    def shape(self) -> tuple[int, ...]:
        buf = (ctypes.c_size_t * max(self.ndim, 1))()
        LIB.tensorGetShape(self._handle, buf)
        return tuple(buf[: self.ndim])

    @property
    def strides(self) -> tuple[int, ...]:
        buf = (ctypes.c_ssize_t * max(self.ndim, 1))()
        LIB.tensorGetStrides(self._handle, buf)
        return tuple(buf[: self.ndim])

    @property
    def dtype(self) -> DataType:
        return DataType(LIB.tensorGetDataType(self._handle))

    @property
    def device(self) -> DeviceType:
        return DeviceType(LIB.tensorGetDeviceType(self._handle))

    @property
    def device_id(self) -> int:
        return LIB.tensorGetDeviceId(self._handle)

    def is_contiguous(self) -> bool:
        return bool(LIB.tensorIsContiguous(self._handle))

    def data_ptr(self) -> int:
        return LIB.tensorGetData(self._handle) or 0

    def load(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        check(LIB.tensorLoad(self._handle, array.ctypes.data_as(ctypes.c_void_p)))

    def numpy(self) -> np.ndarray:
        """A host copy; BF16 comes back as float32 values."""
        src = self if self.is_contiguous() else self.contiguous()
        out = np.empty(src.shape, dtype=_NUMPY_OF[src.dtype])
        check(LIB.tensorRead(src._handle, out.ctypes.data_as(ctypes.c_void_p)))
        return bf16_bits_to_f32(out) if src.dtype == DataType.BF16 else out

    def _derive(self, fn, *args) -> Tensor:
        out = llaisysTensor_t()
        check(fn(self._handle, *args, ctypes.byref(out)))
        return Tensor(out.value)

    def view(self, *shape: int) -> Tensor:
        shape = [int(s) for s in (shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                                  else shape)]
        return self._derive(LIB.tensorView, _sizes(shape), len(shape))

    def permute(self, *order: int) -> Tensor:
        order = [int(o) for o in (order[0] if len(order) == 1 and not isinstance(order[0], int)
                                  else order)]
        if len(order) != self.ndim:
            raise ValueError(f"permute needs {self.ndim} dims, got {len(order)}")
        return self._derive(LIB.tensorPermute, _sizes(order))

    def slice(self, dim: int, start: int, end: int) -> Tensor:
        return self._derive(LIB.tensorSlice, dim, start, end)

    def contiguous(self) -> Tensor:
        return self._derive(LIB.tensorContiguous)

    def debug(self) -> None:
        check(LIB.tensorDebug(self._handle))

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype.name}, device={self.device.name})"
