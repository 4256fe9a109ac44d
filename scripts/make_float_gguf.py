#!/usr/bin/env python3
"""Writes a float copy of a quantized GGUF: every quantized tensor dequantized and stored as
F16 or BF16, F32 tensors (norms) kept, metadata copied. Gives llama.cpp and llaisys the same
float weights (those the quantized file encodes) when no float checkpoint is at hand.

    python scripts/make_float_gguf.py IN.gguf OUT.gguf [--type f16|bf16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, Keys, quants
from gguf.constants import LlamaFileType

_TYPES = {
    "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
}


def make_float_gguf(src: Path, dst: Path, kind: str = "f16") -> Path:
    """Writes dst (via a temporary name, so an interrupted run leaves no half file)."""
    qtype, file_type = _TYPES[kind]
    reader = GGUFReader(src)
    arch = reader.fields[Keys.General.ARCHITECTURE].contents()
    tmp = dst.with_name(dst.name + ".part")
    writer = GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name == Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        vtype = field.types[0]
        value = int(file_type) if field.name == Keys.General.FILE_TYPE else field.contents()
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))  # ne is innermost first
        if t.tensor_type == GGMLQuantizationType.F32:
            writer.add_tensor(t.name, np.asarray(t.data).reshape(shape))
            continue
        data = quants.dequantize(t.data, t.tensor_type).reshape(shape)
        writer.add_tensor(t.name, quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dst)
    return dst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--type", choices=sorted(_TYPES), default="f16")
    args = p.parse_args()
    print(make_float_gguf(args.src, args.dst, args.type))


if __name__ == "__main__":
    main()
