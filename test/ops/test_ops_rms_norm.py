"""llaisysRmsNorm: out = in / sqrt(mean(in^2) + eps) * weight, per row."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import (
    FLOAT_DTYPES,
    assert_close,
    padded_rows,
    random_values,
    to_numpy,
    to_tensor,
)

EPS = 1e-6


def _reference(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("rows, d", [(1, 1), (7, 7), (3, 4097), (64, 576)])
def test_random_rows_when_rms_norm_then_matches_reference(dtype: DataType, rows: int, d: int):
    rng = np.random.default_rng(7)
    x, w = random_values(rng, (rows, d), dtype, scale=3.0), random_values(rng, (d,), dtype)
    out = Tensor.empty((rows, d), dtype)
    ops.rms_norm(out, to_tensor(x, dtype), to_tensor(w, dtype), EPS)
    assert_close(to_numpy(out), _reference(x, w, EPS), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_padded_input_and_output_rows_when_rms_norm_then_matches_reference(dtype: DataType):
    rng = np.random.default_rng(8)
    x, w = random_values(rng, (5, 33), dtype), random_values(rng, (33,), dtype)
    out = padded_rows(np.zeros((5, 33), np.float32), dtype, pad=7)
    ops.rms_norm(out, padded_rows(x, dtype), to_tensor(w, dtype), EPS)
    assert_close(to_numpy(out), _reference(x, w, EPS), dtype)


def test_zero_row_when_rms_norm_then_eps_keeps_it_zero():
    out = Tensor.empty((1, 4))
    ops.rms_norm(out, Tensor.from_numpy(np.zeros((1, 4), np.float32)),
                 Tensor.from_numpy(np.ones(4, np.float32)), 1e-5)
    np.testing.assert_array_equal(out.numpy(), np.zeros((1, 4), np.float32))


def test_weight_of_wrong_length_when_rms_norm_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)), Tensor.empty((5,)), EPS)


def test_one_dim_input_when_rms_norm_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rms_norm(Tensor.empty((4,)), Tensor.empty((4,)), Tensor.empty((4,)), EPS)


def test_mixed_dtypes_when_rms_norm_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)),
                     Tensor.empty((4,), DataType.BF16), EPS)


def test_empty_rows_when_rms_norm_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rms_norm(Tensor.empty((2, 0)), Tensor.empty((2, 0)), Tensor.empty((0,)), EPS)


def test_negative_eps_when_rms_norm_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)), Tensor.empty((4,)), -1.0)


def test_null_tensor_when_rms_norm_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)), None, EPS)
