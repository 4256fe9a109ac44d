"""ctypes declarations mirroring include/llaisys/*.h one to one; nothing else.

The shared library is found next to this file (installed by the build), on sys.path
(editable installs), or at $LLAISYS_LIBRARY.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from . import model, ops, runtime, tensor
from .types import (
    LlaisysBatch,
    LlaisysKvCacheParams,
    LlaisysKvCacheStats,
    LlaisysModelMeta,
    LlaisysRuntimeAPI,
    LlaisysSamplingParams,
    llaisysDataType_t,
    llaisysDeviceType_t,
    llaisysKvLayout_t,
    llaisysStatus_t,
)

_LIB_NAME = "libllaisys.so" if sys.platform != "darwin" else "libllaisys.dylib"


def _candidates() -> list[Path]:
    paths = []
    if env := os.environ.get("LLAISYS_LIBRARY"):
        paths.append(Path(env))
    paths.append(Path(__file__).with_name(_LIB_NAME))
    paths += [Path(p) / "llaisys" / "libllaisys" / _LIB_NAME for p in sys.path if p]
    return paths


def _load() -> ctypes.CDLL:
    # OpenBLAS comes from the scipy-openblas32 wheel; load it first so the core's
    # dependency resolves wherever the wheel lives.
    try:
        import scipy_openblas32

        ctypes.CDLL(
            str(Path(scipy_openblas32.get_lib_dir()) / "libscipy_openblas.so"),
            mode=ctypes.RTLD_GLOBAL,
        )
    except (ImportError, OSError):
        pass
    tried = []
    for path in _candidates():
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(str(path))
    raise ImportError(
        "llaisys: the native library was not found (tried: "
        + ", ".join(tried[:4])
        + "). Install the package with `pip install -e .` or set LLAISYS_LIBRARY."
    )


LIB = _load()
for _module in (runtime, tensor, ops, model):
    _module.declare(LIB)

__all__ = [
    "LIB",
    "LlaisysBatch",
    "LlaisysKvCacheParams",
    "LlaisysKvCacheStats",
    "LlaisysModelMeta",
    "LlaisysRuntimeAPI",
    "LlaisysSamplingParams",
    "llaisysDataType_t",
    "llaisysDeviceType_t",
    "llaisysKvLayout_t",
    "llaisysStatus_t",
]
