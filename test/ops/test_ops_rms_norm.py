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
# 8192: more 16-byte packs than a GPU block has threads, so threads read further packs
# after the one they keep in registers.
@pytest.mark.parametrize("rows, d", [(1, 1), (7, 7), (3, 4097), (64, 576), (2, 8192)])
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


def _residual_case(dtype: DataType, rows: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    x = random_values(rng, (rows, d), dtype, scale=3.0)
    r = random_values(rng, (rows, d), dtype, scale=3.0)
    w = random_values(rng, (d,), dtype)
    return x, r, w


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("rows, d",
                         [(1, 1), (7, 7), (3, 4097), (64, 576), (2, 1536), (2, 8192)])
def test_residual_when_add_rms_norm_then_x_holds_sum_and_out_its_norm(dtype: DataType, rows: int,
                                                                      d: int):
    x, r, w = _residual_case(dtype, rows, d, seed=9)
    xt, out = to_tensor(x, dtype), Tensor.empty((rows, d), dtype)
    ops.add_rms_norm(out, xt, to_tensor(r, dtype), to_tensor(w, dtype), EPS)
    # The sum is rounded to the dtype before the norm, as add then rms_norm would round it.
    expect_sum = to_numpy(to_tensor(x.astype(np.float64) + r, dtype)).astype(np.float64)
    assert_close(to_numpy(xt), expect_sum, dtype)
    assert_close(to_numpy(out), _reference(expect_sum, w, EPS), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_add_rms_norm_when_compared_with_add_then_rms_norm_then_bits_agree(dtype: DataType):
    x, r, w = _residual_case(dtype, 5, 1536, seed=10)
    fused_x, fused_out = to_tensor(x, dtype), Tensor.empty((5, 1536), dtype)
    ops.add_rms_norm(fused_out, fused_x, to_tensor(r, dtype), to_tensor(w, dtype), EPS)
    plain_x, plain_out = to_tensor(x, dtype), Tensor.empty((5, 1536), dtype)
    ops.add(plain_x, plain_x, to_tensor(r, dtype))
    ops.rms_norm(plain_out, plain_x, to_tensor(w, dtype), EPS)
    np.testing.assert_array_equal(to_numpy(fused_x), to_numpy(plain_x))
    np.testing.assert_array_equal(to_numpy(fused_out), to_numpy(plain_out))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_padded_rows_when_add_rms_norm_then_matches_reference(dtype: DataType):
    x, r, w = _residual_case(dtype, 5, 40, seed=11)
    xt = padded_rows(x, dtype, pad=8)
    out = padded_rows(np.zeros((5, 40), np.float32), dtype, pad=3)
    ops.add_rms_norm(out, xt, padded_rows(r, dtype, pad=5), to_tensor(w, dtype), EPS)
    expect_sum = to_numpy(to_tensor(x.astype(np.float64) + r, dtype)).astype(np.float64)
    assert_close(to_numpy(xt), expect_sum, dtype)
    assert_close(to_numpy(out), _reference(expect_sum, w, EPS), dtype)


def test_residual_of_other_shape_when_add_rms_norm_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.add_rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)), Tensor.empty((3, 4)),
                         Tensor.empty((4,)), EPS)


def test_residual_of_other_dtype_when_add_rms_norm_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.add_rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)),
                         Tensor.empty((2, 4), DataType.BF16), Tensor.empty((4,)), EPS)


def test_null_residual_when_add_rms_norm_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.add_rms_norm(Tensor.empty((2, 4)), Tensor.empty((2, 4)), None, Tensor.empty((4,)), EPS)
