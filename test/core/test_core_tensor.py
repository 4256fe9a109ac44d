"""Tensors (include/llaisys/tensor.h): creation, host round trips and views over shared
storage."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor

NUMPY_OF = {
    DataType.F32: np.float32,
    DataType.F16: np.float16,
    DataType.BF16: np.uint16,  # raw bit patterns
    DataType.I32: np.int32,
    DataType.I64: np.int64,
    DataType.I8: np.int8,
    DataType.U8: np.uint8,
}
ALL_DTYPES = list(NUMPY_OF)


def _pattern(shape: tuple[int, ...], dtype: DataType) -> np.ndarray:
    """Distinct values (as the dtype's numpy storage type) for every element."""
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if dtype == DataType.BF16:
        return (values % 2000 + 0x3C00).astype(np.uint16)  # finite bf16 bit patterns
    return (values % 100).astype(NUMPY_OF[dtype])


def _arange(*shape: int) -> tuple[Tensor, np.ndarray]:
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return Tensor.from_numpy(x), x


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_shape_and_dtype_when_create_then_contiguous_tensor_described(dtype: DataType):
    t = Tensor.empty((2, 3, 4), dtype)
    assert t.shape == (2, 3, 4)
    assert t.strides == (12, 4, 1)
    assert t.dtype == dtype
    assert t.device == llaisys.DeviceType.CPU and t.device_id == 0
    assert t.is_contiguous()
    assert t.data_ptr() != 0


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4097), (2, 3, 5)])
def test_host_data_when_load_then_read_returns_same_bytes(dtype: DataType,
                                                          shape: tuple[int, ...]):
    data = _pattern(shape, dtype)
    t = Tensor.empty(shape, dtype)
    t.load(data)
    out = np.empty(shape, dtype=NUMPY_OF[dtype])
    llaisys.errors.check(llaisys.libllaisys.LIB.tensorRead(t.handle, out.ctypes.data))
    np.testing.assert_array_equal(out, data)


def test_bf16_tensor_when_numpy_then_float_values_returned():
    x = np.array([1.0, -2.5, 3.140625], dtype=np.float32)  # exact in bf16
    np.testing.assert_array_equal(Tensor.from_numpy(x, dtype=DataType.BF16).numpy(), x)


def test_zero_sized_dim_when_create_then_empty_tensor():
    t = Tensor.empty((3, 0, 2))
    assert t.shape == (3, 0, 2)
    assert t.numpy().shape == (3, 0, 2)


def test_no_dims_when_create_then_scalar_round_trips():
    t = Tensor.empty(())
    t.load(np.array(2.5, dtype=np.float32))
    assert t.shape == () and t.numpy() == np.float32(2.5)


def test_too_many_dims_when_create_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        Tensor.empty((1,) * 9)


def test_quantized_rows_not_whole_blocks_when_create_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        Tensor.empty((2, 33), DataType.Q8_0)


def test_contiguous_tensor_when_view_then_reshaped_over_same_storage():
    t, x = _arange(2, 3, 4)
    v = t.view(6, 4)
    assert v.shape == (6, 4) and v.strides == (4, 1)
    assert v.data_ptr() == t.data_ptr()
    np.testing.assert_array_equal(v.numpy(), x.reshape(6, 4))


def test_row_slice_when_view_merging_inner_dims_then_expressible():
    t, x = _arange(4, 3, 2)
    v = t.slice(0, 1, 3).view(2, 6)
    assert v.strides == (6, 1)
    np.testing.assert_array_equal(v.numpy(), x[1:3].reshape(2, 6))


def test_column_slice_when_view_splitting_rows_then_expressible():
    t, x = _arange(4, 6)
    v = t.slice(1, 0, 4).view(2, 2, 4)
    assert v.strides == (12, 6, 1)
    np.testing.assert_array_equal(v.numpy(), x[:, :4].reshape(2, 2, 4))


def test_permuted_tensor_when_view_flattening_then_shape_error():
    t, _ = _arange(2, 3)
    with pytest.raises(llaisys.ShapeError, match="expressible"):
        t.permute(1, 0).view(6)


def test_other_element_count_when_view_then_shape_error():
    t, _ = _arange(2, 3)
    with pytest.raises(llaisys.ShapeError):
        t.view(7)


def test_order_when_permute_then_shape_and_strides_reordered():
    t, x = _arange(2, 3, 4)
    p = t.permute(2, 0, 1)
    assert p.shape == (4, 2, 3) and p.strides == (1, 12, 4)
    assert not p.is_contiguous()
    np.testing.assert_array_equal(p.numpy(), x.transpose(2, 0, 1))


def test_repeated_dim_when_permute_then_invalid_argument():
    t, _ = _arange(2, 3)
    with pytest.raises(llaisys.InvalidArgumentError):
        t.permute(0, 0)


def test_range_when_slice_then_view_of_those_elements():
    t, x = _arange(5, 4)
    s = t.slice(1, 1, 3)
    assert s.shape == (5, 2) and s.strides == (4, 1)
    assert s.data_ptr() == t.data_ptr() + 4  # one f32 in
    np.testing.assert_array_equal(s.numpy(), x[:, 1:3])


def test_empty_range_when_slice_then_zero_sized_view():
    t, _ = _arange(5, 4)
    assert t.slice(0, 2, 2).shape == (0, 4)


@pytest.mark.parametrize("dim, start, end", [(2, 0, 1), (0, 3, 2), (1, 0, 5)])
def test_range_outside_tensor_when_slice_then_invalid_argument(dim: int, start: int, end: int):
    t, _ = _arange(3, 4)
    with pytest.raises(llaisys.InvalidArgumentError):
        t.slice(dim, start, end)


def test_permuted_tensor_when_contiguous_then_packed_copy():
    t, x = _arange(3, 5)
    c = t.permute(1, 0).contiguous()
    assert c.is_contiguous() and c.shape == (5, 3)
    assert c.data_ptr() != t.data_ptr()
    np.testing.assert_array_equal(c.numpy(), x.T)


def test_contiguous_tensor_when_contiguous_then_shares_storage():
    t, _ = _arange(3, 5)
    assert t.contiguous().data_ptr() == t.data_ptr()


def test_write_through_parent_when_reading_view_then_view_sees_it():
    t, _ = _arange(2, 4)
    v = t.slice(0, 1, 2)
    t.load(np.full((2, 4), 9.0, dtype=np.float32))
    np.testing.assert_array_equal(v.numpy(), np.full((1, 4), 9.0, dtype=np.float32))


def test_parent_handle_released_when_view_alive_then_storage_kept():
    t, x = _arange(64, 64)
    v = t.permute(1, 0).slice(0, 3, 7)
    del t
    gc.collect()
    _churn = [Tensor.from_numpy(np.zeros((64, 64), np.float32)) for _ in range(4)]
    np.testing.assert_array_equal(v.numpy(), x.T[3:7])


def test_non_contiguous_tensor_when_load_then_shape_error():
    t, _ = _arange(3, 4)
    with pytest.raises(llaisys.ShapeError):
        t.permute(1, 0).load(np.zeros((4, 3), np.float32))


def test_tensor_when_debug_then_prints_info_and_values(capfd: pytest.CaptureFixture[str]):
    t, _ = _arange(2, 2)
    t.permute(1, 0).debug()
    printed = capfd.readouterr().out
    assert "shape=[2, 2]" in printed and "F32" in printed.upper()
    assert printed.split()[-4:] == ["0", "2", "1", "3"]
