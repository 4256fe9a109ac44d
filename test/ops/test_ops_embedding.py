"""llaisysEmbedding: out[i] = weight[index[i]]; an index outside [0, V) is rejected."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import FLOAT_DTYPES, random_values, to_numpy, to_tensor


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("vocab, d, n", [(1, 1, 1), (7, 7, 7), (100, 4097, 3), (50, 64, 300)])
def test_random_indices_when_embedding_then_rows_copied(dtype: DataType, vocab: int, d: int,
                                                         n: int):
    rng = np.random.default_rng(5)
    weight = random_values(rng, (vocab, d), dtype)
    index = rng.integers(0, vocab, size=n, dtype=np.int64)
    out = Tensor.empty((n, d), dtype)
    ops.embedding(out, Tensor.from_numpy(index), to_tensor(weight, dtype))
    np.testing.assert_array_equal(to_numpy(out), weight[index])


@pytest.mark.parametrize("bad", [-1, 10, 2**40])
def test_index_out_of_range_when_embedding_then_invalid_argument_and_out_untouched(bad: int):
    weight = Tensor.from_numpy(np.ones((10, 4), dtype=np.float32))
    out = Tensor.from_numpy(np.full((3, 4), 7.0, dtype=np.float32))
    with pytest.raises(llaisys.InvalidArgumentError, match="index"):
        ops.embedding(out, Tensor.from_numpy(np.array([0, 1, bad], dtype=np.int64)), weight)
    np.testing.assert_array_equal(out.numpy(), np.full((3, 4), 7.0, dtype=np.float32))


def test_no_indices_when_embedding_then_succeeds():
    out = Tensor.empty((0, 4))
    ops.embedding(out, Tensor.empty((0,), DataType.I64), Tensor.empty((10, 4)))
    assert out.shape == (0, 4)


def test_index_not_i64_when_embedding_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.embedding(Tensor.empty((2, 4)), Tensor.from_numpy(np.array([0, 1], dtype=np.int32)),
                      Tensor.empty((10, 4)))


def test_out_of_other_dtype_when_embedding_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.embedding(Tensor.empty((2, 4), DataType.BF16), Tensor.empty((2,), DataType.I64),
                      Tensor.empty((10, 4)))


def test_out_width_differs_from_weight_when_embedding_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.embedding(Tensor.empty((2, 5)), Tensor.empty((2,), DataType.I64),
                      Tensor.empty((10, 4)))


def test_out_rows_differ_from_index_when_embedding_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.embedding(Tensor.empty((3, 4)), Tensor.empty((2,), DataType.I64),
                      Tensor.empty((10, 4)))


def test_null_tensor_when_embedding_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.embedding(Tensor.empty((2, 4)), None, Tensor.empty((10, 4)))
