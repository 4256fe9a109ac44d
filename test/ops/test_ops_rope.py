"""llaisysRope: half-rotation rotary embedding of [n, heads, d] at per-token positions."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import FLOAT_DTYPES, assert_close, random_values, to_numpy, to_tensor


def _reference(x: np.ndarray, pos: np.ndarray, theta: float) -> np.ndarray:
    d = x.shape[-1]
    half = d // 2
    inv_freq = float(theta) ** (-np.arange(half, dtype=np.float64) * 2 / d)
    angle = pos.astype(np.float64)[:, None, None] * inv_freq  # [n, 1, half]
    a, b = x[..., :half].astype(np.float64), x[..., half:].astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("n, heads, d", [(1, 1, 2), (7, 3, 8), (5, 2, 64), (2, 1, 4096)])
@pytest.mark.parametrize("theta", [10000.0, 1e6])
def test_random_positions_when_rope_then_matches_reference(dtype: DataType, n: int, heads: int,
                                                           d: int, theta: float):
    rng = np.random.default_rng(9)
    x = random_values(rng, (n, heads, d), dtype)
    pos = rng.integers(0, 100_000, size=n, dtype=np.int64)
    out = Tensor.empty((n, heads, d), dtype)
    ops.rope(out, to_tensor(x, dtype), Tensor.from_numpy(pos), theta)
    assert_close(to_numpy(out), _reference(x, pos, theta), dtype)


def test_position_zero_when_rope_then_identity():
    x = random_values(np.random.default_rng(10), (3, 2, 6), DataType.F32)
    out = Tensor.empty((3, 2, 6))
    ops.rope(out, Tensor.from_numpy(x), Tensor.from_numpy(np.zeros(3, np.int64)), 10000.0)
    np.testing.assert_array_equal(out.numpy(), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_out_aliasing_in_when_rope_then_rotates_in_place(dtype: DataType):
    rng = np.random.default_rng(11)
    x = random_values(rng, (4, 3, 16), dtype)
    pos = np.array([0, 5, 17, 4096], dtype=np.int64)
    t = to_tensor(x, dtype)
    ops.rope(t, t, Tensor.from_numpy(pos), 10000.0)
    assert_close(to_numpy(t), _reference(x, pos, 10000.0), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_heads_sliced_from_fused_projection_when_rope_then_matches_reference(dtype: DataType):
    rng = np.random.default_rng(12)
    fused = random_values(rng, (6, 5, 8), dtype)  # q heads 0..2, then other heads
    pos = rng.integers(0, 1000, size=6, dtype=np.int64)
    q = to_tensor(fused, dtype).slice(1, 0, 3)
    assert not q.is_contiguous()
    out = Tensor.empty((6, 3, 8), dtype)
    ops.rope(out, q, Tensor.from_numpy(pos), 10000.0)
    assert_close(to_numpy(out), _reference(fused[:, :3], pos, 10000.0), dtype)


def test_odd_head_dim_when_rope_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rope(Tensor.empty((2, 1, 5)), Tensor.empty((2, 1, 5)),
                 Tensor.empty((2,), DataType.I64), 10000.0)


def test_positions_of_wrong_length_when_rope_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rope(Tensor.empty((2, 1, 4)), Tensor.empty((2, 1, 4)),
                 Tensor.empty((3,), DataType.I64), 10000.0)


def test_out_shape_differs_when_rope_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rope(Tensor.empty((2, 2, 4)), Tensor.empty((2, 1, 4)),
                 Tensor.empty((2,), DataType.I64), 10000.0)


def test_strided_last_dim_when_rope_then_shape_error():
    x = Tensor.empty((4, 1, 2)).permute(2, 1, 0)  # [2, 1, 4] with last-dim stride 2
    with pytest.raises(llaisys.ShapeError):
        ops.rope(Tensor.empty((2, 1, 4)), x, Tensor.empty((2,), DataType.I64), 10000.0)


def test_positions_not_i64_when_rope_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.rope(Tensor.empty((2, 1, 4)), Tensor.empty((2, 1, 4)),
                 Tensor.empty((2,), DataType.I32), 10000.0)


def test_mixed_dtypes_when_rope_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.rope(Tensor.empty((2, 1, 4), DataType.F16), Tensor.empty((2, 1, 4)),
                 Tensor.empty((2,), DataType.I64), 10000.0)


def test_non_positive_theta_when_rope_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rope(Tensor.empty((2, 1, 4)), Tensor.empty((2, 1, 4)),
                 Tensor.empty((2,), DataType.I64), 0.0)


def test_null_tensor_when_rope_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rope(Tensor.empty((2, 1, 4)), Tensor.empty((2, 1, 4)), None, 10000.0)
