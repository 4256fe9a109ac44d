"""A GGUF file: its metadata, parsed directly, and its tensors as views of one memory map.

Layout (v2/v3, little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count,
the metadata (key string, u32 value type, value), the tensor infos (name, u32 n_dims,
u64 ne[n_dims] innermost first, u32 ggml type, u64 offset), then the data aligned to
general.alignment (32 by default). Numeric arrays are read with numpy and strings with
one slice each, so a 49k-entry vocabulary parses in milliseconds.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from .config import CheckpointError

_MAGIC = b"GGUF"
_SCALARS = {  # GGUF value type -> struct format
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_NUMPY = {t: np.dtype(fmt) for t, fmt in _SCALARS.items()}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufTensor:
    name: str
    type: GGMLQuantizationType
    shape: tuple[int, ...]  # numpy order: outermost first (ne reversed)
    data: np.ndarray  # raw bytes, uint8 [rows, bytes per row], a view of the memory map


@dataclass(frozen=True)
class GgufFile:
    path: Path
    metadata: dict[str, Any]
    tensors: dict[str, GgufTensor]


class _Cursor:
    def __init__(self, buf: memoryview, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.buf):
            raise CheckpointError(f"{self.path}: truncated GGUF file while reading {what}")

    def scalar(self, vtype: int, what: str) -> Any:
        fmt = _SCALARS[vtype]
        size = struct.calcsize(fmt)
        self._need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self, what: str) -> str:
        n = self.scalar(10, what)
        self._need(n, what)
        s = str(self.buf[self.pos: self.pos + n], "utf-8", "replace")
        self.pos += n
        return s

    def value(self, vtype: int, what: str) -> Any:
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            etype, count = self.scalar(4, what), self.scalar(10, what)
            if etype == _STRING:
                return [self.string(what) for _ in range(count)]
            if etype not in _NUMPY:
                raise CheckpointError(f"{self.path}: {what}: unknown array type {etype}")
            dtype = _NUMPY[etype]
            self._need(count * dtype.itemsize, what)
            arr = np.frombuffer(self.buf, dtype, count, self.pos).copy()
            self.pos += count * dtype.itemsize
            return arr.tolist()
        if vtype not in _SCALARS:
            raise CheckpointError(f"{self.path}: {what}: unknown value type {vtype}")
        return self.scalar(vtype, what)


def read_gguf(path: Path) -> GgufFile:
    """Parses the file's metadata and tensor infos; tensor data stays memory-mapped."""
    size = path.stat().st_size
    if size < 24:
        raise CheckpointError(f"{path}: not a GGUF file (only {size} bytes)")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(memoryview(mm), path)
    if bytes(mm[:4]) != _MAGIC:
        raise CheckpointError(f"{path}: not a GGUF file (magic {bytes(mm[:4])!r})")
    cur.pos = 4
    version = cur.scalar(4, "version")
    if version not in (2, 3):
        raise CheckpointError(f"{path}: GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = cur.scalar(10, "tensor count"), cur.scalar(10, "metadata count")

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string("a metadata key")
        metadata[key] = cur.value(cur.scalar(4, key), key)

    infos = []
    for _ in range(n_tensors):
        name = cur.string("a tensor name")
        n_dims = cur.scalar(4, name)
        ne = [cur.scalar(10, name) for _ in range(n_dims)]
        raw_type, offset = cur.scalar(4, name), cur.scalar(10, name)
        infos.append((name, ne, raw_type, offset))

    alignment = metadata.get("general.alignment", 32)
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0:
        raise CheckpointError(f"{path}: general.alignment must be a positive integer, "
                              f"got {alignment!r}")
    base = -(-cur.pos // alignment) * alignment
    tensors = {}
    for name, ne, raw_type, offset in infos:
        try:
            qtype = GGMLQuantizationType(raw_type)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise CheckpointError(
                f"{path}: tensor {name!r} has unknown ggml type {raw_type}") from None
        if ne[0] % block:
            raise CheckpointError(
                f"{path}: tensor {name!r}: row of {ne[0]} is not a multiple of the "
                f"{qtype.name} block ({block})")
        row_bytes = ne[0] // block * type_size
        rows = math.prod(ne[1:])  # Python ints: a corrupt ne must not overflow
        begin = base + offset
        end = begin + rows * row_bytes
        if end > size:
            raise CheckpointError(
                f"{path}: truncated file: tensor {name!r} ends at byte {end}, "
                f"the file has {size}")
        shape = tuple(int(d) for d in reversed(ne))
        tensors[name] = GgufTensor(name, qtype, shape,
                                   mm[begin:end].reshape(rows, row_bytes))
    return GgufFile(path, metadata, tensors)
