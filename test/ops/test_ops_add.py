"""llaisysAdd: c = a + b elementwise over identical contiguous shapes."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import FLOAT_DTYPES, assert_close, random_values, to_numpy, to_tensor


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(1,), (7,), (4097,), (3, 5, 7), (70001,)])
def test_random_operands_when_add_then_matches_numpy(dtype: DataType, shape: tuple[int, ...]):
    rng = np.random.default_rng(1)
    a, b = random_values(rng, shape, dtype), random_values(rng, shape, dtype)
    c = Tensor.empty(shape, dtype)
    ops.add(c, to_tensor(a, dtype), to_tensor(b, dtype))
    assert_close(to_numpy(c), a.astype(np.float64) + b, dtype)


def test_empty_operands_when_add_then_succeeds():
    c = Tensor.empty((0, 4))
    ops.add(c, Tensor.empty((0, 4)), Tensor.empty((0, 4)))
    assert c.shape == (0, 4)


def test_different_shapes_when_add_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.add(Tensor.empty((4,)), Tensor.empty((4,)), Tensor.empty((5,)))


def test_mixed_dtypes_when_add_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.add(Tensor.empty((4,)), Tensor.empty((4,), DataType.F16), Tensor.empty((4,)))


def test_integer_operands_when_add_then_dtype_error():
    t = Tensor.empty((4,), DataType.I32)
    with pytest.raises(llaisys.DTypeError):
        ops.add(t, t, t)


def test_non_contiguous_operand_when_add_then_shape_error():
    a = Tensor.empty((4, 6)).slice(1, 0, 3)
    with pytest.raises(llaisys.ShapeError):
        ops.add(Tensor.empty((4, 3)), a, Tensor.empty((4, 3)))


def test_null_tensor_when_add_then_invalid_argument():
    t = Tensor.empty((4,))
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.add(None, t, t)
