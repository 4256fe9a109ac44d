"""llaisysArgmax: per row, the index (I64) and value of the first maximum."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import (
    FLOAT_DTYPES,
    padded_rows,
    random_values,
    round_to,
    to_numpy,
    to_tensor,
)


def _argmax(vals: Tensor, rows: int, dtype: DataType) -> tuple[np.ndarray, np.ndarray]:
    idx, val = Tensor.empty((rows,), DataType.I64), Tensor.empty((rows,), dtype)
    ops.argmax(idx, val, vals)
    return idx.numpy(), to_numpy(val)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("rows, n", [(1, 1), (7, 7), (3, 4097), (40, 2000)])
def test_random_rows_when_argmax_then_matches_numpy(dtype: DataType, rows: int, n: int):
    x = random_values(np.random.default_rng(3), (rows, n), dtype)
    idx, val = _argmax(to_tensor(x, dtype), rows, dtype)
    np.testing.assert_array_equal(idx, x.argmax(axis=1))
    np.testing.assert_array_equal(val, x.max(axis=1))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_tied_maxima_when_argmax_then_lowest_index(dtype: DataType):
    x = np.array([[1, 5, 2, 5, 5], [3, 3, 3, 3, 3], [-1, -2, -1, -3, -9]], dtype=np.float32)
    idx, val = _argmax(to_tensor(x, dtype), 3, dtype)
    np.testing.assert_array_equal(idx, [1, 0, 0])
    np.testing.assert_array_equal(val, [5, 3, -1])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
# A vocabulary row: more 16-byte packs than the GPU block's threads take in one batch of
# loads, and 151939 leaves a tail past the last whole pack.
@pytest.mark.parametrize("rows, n", [(2, 151936), (1, 151939)])
def test_vocab_rows_with_a_tie_far_apart_when_argmax_then_the_first(dtype: DataType, rows: int,
                                                                    n: int):
    x = random_values(np.random.default_rng(5), (rows, n), dtype)
    first, second = 8 * 1024 * 8 + 3, n - 1  # a later batch of loads; the row's last element
    x[:, [first, second]] = x.max() + 1.0
    x = round_to(x, dtype)
    idx, val = _argmax(to_tensor(x, dtype), rows, dtype)
    np.testing.assert_array_equal(idx, [first] * rows)
    np.testing.assert_array_equal(val, x.max(axis=1))


def test_one_dim_vals_when_argmax_then_one_row():
    x = np.array([0.5, -1.0, 9.0, 2.0], dtype=np.float32)
    idx, val = _argmax(Tensor.from_numpy(x), 1, DataType.F32)
    assert idx.tolist() == [2] and val.tolist() == [9.0]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_padded_rows_when_argmax_then_padding_ignored(dtype: DataType):
    # All values are negative, so reading the zero padding would change the answer.
    x = round_to(random_values(np.random.default_rng(4), (5, 9), dtype) - 10.0, dtype)
    idx, val = _argmax(padded_rows(x, dtype), 5, dtype)
    np.testing.assert_array_equal(idx, x.argmax(axis=1))
    np.testing.assert_array_equal(val, x.max(axis=1))


def test_index_output_not_i64_when_argmax_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.argmax(Tensor.empty((2,), DataType.I32), Tensor.empty((2,)), Tensor.empty((2, 3)))


def test_value_output_of_other_dtype_when_argmax_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.argmax(Tensor.empty((2,), DataType.I64), Tensor.empty((2,), DataType.F16),
                   Tensor.empty((2, 3)))


def test_integer_vals_when_argmax_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.argmax(Tensor.empty((2,), DataType.I64), Tensor.empty((2,), DataType.I32),
                   Tensor.empty((2, 3), DataType.I32))


def test_outputs_of_wrong_length_when_argmax_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.argmax(Tensor.empty((3,), DataType.I64), Tensor.empty((3,)), Tensor.empty((2, 3)))


def test_three_dim_vals_when_argmax_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.argmax(Tensor.empty((2,), DataType.I64), Tensor.empty((2,)), Tensor.empty((2, 1, 3)))


def test_empty_rows_when_argmax_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.argmax(Tensor.empty((2,), DataType.I64), Tensor.empty((2,)), Tensor.empty((2, 0)))


def test_null_tensor_when_argmax_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.argmax(Tensor.empty((2,), DataType.I64), None, Tensor.empty((2, 3)))
