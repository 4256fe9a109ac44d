"""Shared helpers of the operator tests: random tensors per dtype, tolerances, references.

Values are generated in float32, rounded to the tensor's dtype, and the rounded values are
what references see, so a comparison measures the operator's error and not the input's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from llaisys import DataType, Tensor
from llaisys.tensor import bf16_bits_to_f32, f32_to_bf16_bits

torch.set_num_threads(1)

FLOAT_DTYPES = (DataType.F32, DataType.F16, DataType.BF16)

# (atol, rtol) of an op's result against a float64 reference of the rounded inputs: one
# rounding of the output dominates in f16/bf16, f32 accumulation order in f32.
TOLERANCE = {
    DataType.F32: (1e-5, 1e-5),
    DataType.F16: (1e-3, 1e-3),
    DataType.BF16: (1e-2, 1e-2),
}

TORCH_DTYPE = {
    DataType.F32: torch.float32,
    DataType.F16: torch.float16,
    DataType.BF16: torch.bfloat16,
}


def round_to(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """float32 values rounded to dtype (nearest even), returned as float32."""
    values = np.asarray(values, dtype=np.float32)
    if dtype == DataType.F16:
        return values.astype(np.float16).astype(np.float32)
    if dtype == DataType.BF16:
        return bf16_bits_to_f32(f32_to_bf16_bits(values)).reshape(values.shape)
    return values


def random_values(
    rng: np.random.Generator, shape: Sequence[int], dtype: DataType, scale: float = 1.0
) -> np.ndarray:
    """Standard-normal values times scale, already rounded to dtype (float32 array)."""
    return round_to(rng.standard_normal(tuple(shape)).astype(np.float32) * scale, dtype)


def to_tensor(values: np.ndarray, dtype: DataType) -> Tensor:
    """A contiguous tensor of dtype holding float values."""
    values = np.asarray(values, dtype=np.float32)
    if dtype == DataType.F16:
        return Tensor.from_numpy(values.astype(np.float16))
    return Tensor.from_numpy(values, dtype=dtype)


def to_numpy(t: Tensor) -> np.ndarray:
    """A float32 host copy of a floating tensor (integer tensors keep their dtype)."""
    out = t.numpy()
    return out.astype(np.float32) if out.dtype == np.float16 else out


def padded_rows(values: np.ndarray, dtype: DataType, pad: int = 3) -> Tensor:
    """A non-contiguous view holding values whose dim-0 rows sit pad elements apart more
    than packed: a slice of a wider tensor along its last dim."""
    values = np.asarray(values, dtype=np.float32)
    wide = np.zeros(values.shape[:-1] + (values.shape[-1] + pad,), dtype=np.float32)
    wide[..., : values.shape[-1]] = values
    view = to_tensor(wide, dtype).slice(values.ndim - 1, 0, values.shape[-1])
    assert not view.is_contiguous()
    return view


def to_torch(values: np.ndarray) -> torch.Tensor:
    """float64 torch tensor of the (already rounded) values, for references."""
    return torch.from_numpy(np.asarray(values, dtype=np.float64))


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: DataType, scale: float = 1.0):
    """actual within TOLERANCE[dtype] of expected; scale widens it for longer reductions."""
    atol, rtol = TOLERANCE[dtype]
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        np.asarray(expected, dtype=np.float64),
        atol=atol * scale,
        rtol=rtol * scale,
    )


# Set in the subprocess of assert_module_passes_on_path, so it does not recurse.
_FORCED_PATH_RERUN = "LLAISYS_TEST_FORCED_PATH_RERUN"


def inside_forced_path_rerun() -> bool:
    return bool(os.environ.get(_FORCED_PATH_RERUN))


def assert_module_passes_on_path(module_file: str, path: str = "generic") -> None:
    """Runs a test module again with LLAISYS_CPU_PATH=path (generic or avx2): the kernel
    path is chosen once per process, so a lower path's kernels are only reachable from a
    fresh one. Skips when this CPU lacks the path's instructions."""
    from llaisys import runtime

    if path == "avx2" and runtime.cpu_kernel_path() == "generic":
        pytest.skip("this CPU has no AVX2 + FMA")
    env = {**os.environ, "LLAISYS_CPU_PATH": path, _FORCED_PATH_RERUN: "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "from llaisys import runtime; print(runtime.cpu_kernel_path())"],
        env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == path
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", module_file],
        env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
