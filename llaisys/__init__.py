"""llaisys: a small LLM inference engine with a C/C++ core."""

from .errors import (
    DeviceError,
    DTypeError,
    InvalidArgumentError,
    InvalidBatchError,
    KvCacheFullError,
    LlaisysError,
    OutOfMemoryError,
    ShapeError,
    UnsupportedError,
)
from .tensor import DataType, DeviceType, Tensor

__all__ = [
    "DataType",
    "DeviceError",
    "DeviceType",
    "DTypeError",
    "InvalidArgumentError",
    "InvalidBatchError",
    "KvCacheFullError",
    "LlaisysError",
    "OutOfMemoryError",
    "ShapeError",
    "Tensor",
    "UnsupportedError",
]
