"""llaisysRearrange: strided copy between tensors of one shape and dtype, any strides."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import FLOAT_DTYPES, random_values, to_numpy, to_tensor


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (2, 4097, 3)])
def test_permuted_input_when_rearrange_then_output_is_transpose(
    dtype: DataType, shape: tuple[int, ...]
):
    x = random_values(np.random.default_rng(2), shape, dtype)
    src = to_tensor(x, dtype).permute(2, 0, 1)
    out = Tensor.empty(src.shape, dtype)
    ops.rearrange(out, src)
    np.testing.assert_array_equal(to_numpy(out), x.transpose(2, 0, 1))


@pytest.mark.parametrize("dtype", [DataType.I64, DataType.I8, DataType.U8], ids=lambda d: d.name)
def test_integer_slice_when_rearrange_into_strided_output_then_values_copied(dtype: DataType):
    np_dtype = {DataType.I64: np.int64, DataType.I8: np.int8, DataType.U8: np.uint8}[dtype]
    x = np.arange(6 * 9).reshape(6, 9).astype(np_dtype)
    src = Tensor.from_numpy(x).slice(1, 2, 7)  # [6, 5], row stride 9
    dst_full = Tensor.from_numpy(np.zeros((5, 6), dtype=np_dtype))
    dst = dst_full.permute(1, 0)  # [6, 5], column-major
    ops.rearrange(dst, src)
    np.testing.assert_array_equal(dst_full.numpy(), x[:, 2:7].T)


def test_scalar_tensors_when_rearrange_then_value_copied():
    src, out = Tensor.empty((), DataType.F32), Tensor.empty((), DataType.F32)
    src.load(np.array(3.5, dtype=np.float32))
    ops.rearrange(out, src)
    assert out.numpy() == np.float32(3.5)


def test_different_shapes_when_rearrange_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.rearrange(Tensor.empty((2, 3)), Tensor.empty((3, 2)))


def test_mixed_dtypes_when_rearrange_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.rearrange(Tensor.empty((2, 3)), Tensor.empty((2, 3), DataType.BF16))


def test_quantized_tensors_when_rearrange_then_dtype_error():
    t = Tensor.empty((2, 32), DataType.Q8_0)
    with pytest.raises(llaisys.DTypeError):
        ops.rearrange(t, t)


def test_null_tensor_when_rearrange_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.rearrange(Tensor.empty((2,)), None)
