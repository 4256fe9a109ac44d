"""A safetensors file as numpy views of one memory map (no copies).

Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {...}}, then the data (offsets relative to it).
"""

from __future__ import annotations

import json
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
    header.pop("__metadata__", None)
    base = 8 + header_len
    mm = np.memmap(path, dtype=np.uint8, mode="r") if size > base else np.zeros(0, np.uint8)
    entries = {}
    for name, info in header.items():
        if info.get("dtype") not in _DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')!r} "
                f"(supported: {', '.join(_DTYPES)})")
        dtype, np_dtype = _DTYPES[info["dtype"]]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
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
