"""A safetensors file as numpy views of one memory map (no copies).

Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {...}}, then the data (offsets relative to it).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tensor import DataType
from .config import CheckpointError

# numpy has no bfloat16: BF16 is exposed as its uint16 bits.
_DTYPES = {
    "F32": (DataType.F32, np.dtype("<f4")),
    "F16": (DataType.F16, np.dtype("<f2")),
    "BF16": (DataType.BF16, np.dtype("<u2")),
}


@dataclass(frozen=True)
class SafetensorsEntry:
    dtype: DataType
    shape: tuple[int, ...]
    data: np.ndarray  # a view of the file's memory map


def read_safetensors(path: Path) -> dict[str, SafetensorsEntry]:
    """Every tensor of the file, by name, validated against the file's size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file (no header length)")
        (header_len,) = struct.unpack("<Q", head)
        if 8 + header_len > size:
            raise CheckpointError(
                f"{path}: truncated safetensors file (header of {header_len} bytes, "
                f"file of {size})")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path}: malformed safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: malformed safetensors header: not a JSON object")
    header.pop("__metadata__", None)
    base = 8 + header_len
    mm = np.memmap(path, dtype=np.uint8, mode="r") if size > base else np.zeros(0, np.uint8)
    entries = {}
    for name, info in header.items():
        dtype, np_dtype, shape, (begin, end) = _entry(path, name, info)
        nbytes = math.prod(shape) * np_dtype.itemsize
        if end - begin != nbytes:
            raise CheckpointError(
                f"{path}: tensor {name!r} spans {end - begin} bytes, its shape {list(shape)} "
                f"needs {nbytes}")
        if base + end > size:
            raise CheckpointError(
                f"{path}: truncated file: tensor {name!r} ends at byte {base + end}, "
                f"the file has {size}")
        data = mm[base + begin: base + end].view(np_dtype).reshape(shape)
        entries[name] = SafetensorsEntry(dtype, shape, data)
    return entries


def _entry(path: Path, name: str, info: object
           ) -> tuple[DataType, np.dtype, tuple[int, ...], tuple[int, int]]:
    """One header entry's dtype, shape and data offsets, checked for type and range."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: tensor {name!r} {what}")

    if not isinstance(info, dict):
        raise bad(f"has a header entry that is not an object: {info!r}")
    if not isinstance(info.get("dtype"), str) or info["dtype"] not in _DTYPES:
        raise bad(f"has unsupported dtype {info.get('dtype')!r} (supported: {', '.join(_DTYPES)})")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(_count(d) for d in shape):
        raise bad(f"has shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise bad(f"has data_offsets {offsets!r}, not [begin, end] with 0 <= begin <= end")
    dtype, np_dtype = _DTYPES[info["dtype"]]
    return dtype, np_dtype, tuple(shape), (offsets[0], offsets[1])


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
