"""Typed exceptions raised for the core's status codes."""

from __future__ import annotations

from .libllaisys import LIB, llaisysStatus_t


class LlaisysError(RuntimeError):
    """A core call failed; the message is the core's last error."""

    status = llaisysStatus_t.ERR_INTERNAL

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = llaisysStatus_t(status)


class InvalidArgumentError(LlaisysError, ValueError):
    status = llaisysStatus_t.ERR_INVALID_ARGUMENT


class ShapeError(LlaisysError, ValueError):
    status = llaisysStatus_t.ERR_SHAPE


class DTypeError(LlaisysError, TypeError):
    status = llaisysStatus_t.ERR_DTYPE


class DeviceError(LlaisysError):
    status = llaisysStatus_t.ERR_DEVICE


class OutOfMemoryError(LlaisysError, MemoryError):
    status = llaisysStatus_t.ERR_OUT_OF_MEMORY


class KvCacheFullError(LlaisysError):
    """Decode found no KV space; the cache is unchanged."""

    status = llaisysStatus_t.ERR_NO_KV_SPACE


class InvalidBatchError(LlaisysError, ValueError):
    """Decode rejected a malformed batch; the cache is unchanged."""

    status = llaisysStatus_t.ERR_INVALID_BATCH


class UnsupportedError(LlaisysError):
    status = llaisysStatus_t.ERR_UNSUPPORTED


_BY_STATUS = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        ShapeError,
        DTypeError,
        DeviceError,
        OutOfMemoryError,
        KvCacheFullError,
        InvalidBatchError,
        UnsupportedError,
    )
}


def last_error() -> str:
    return LIB.llaisysGetLastError().decode("utf-8", "replace")


def check(status: int) -> None:
    """Raises the exception matching a non-OK status, with the core's message."""
    if status != llaisysStatus_t.OK:
        cls = _BY_STATUS.get(status, LlaisysError)
        raise cls(last_error(), status)
