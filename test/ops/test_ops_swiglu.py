"""llaisysSwiGLU: out = up * gate * sigmoid(gate), elementwise."""

from __future__ import annotations

import numpy as np
import pytest

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import (
    FLOAT_DTYPES,
    assert_close,
    assert_module_passes_on_path,
    inside_forced_path_rerun,
    random_values,
    to_numpy,
    to_tensor,
)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(1,), (7,), (4097,), (3, 7, 5), (8, 8960)])
def test_random_operands_when_swiglu_then_matches_reference(dtype: DataType,
                                                            shape: tuple[int, ...]):
    rng = np.random.default_rng(6)
    gate = random_values(rng, shape, dtype, scale=4.0)
    up = random_values(rng, shape, dtype)
    out = Tensor.empty(shape, dtype)
    ops.swiglu(out, to_tensor(gate, dtype), to_tensor(up, dtype))
    g = gate.astype(np.float64)
    assert_close(to_numpy(out), up * g / (1.0 + np.exp(-g)), dtype)


def test_extreme_gates_when_swiglu_then_finite_limits():
    gate = np.array([-1000.0, 1000.0, 0.0], dtype=np.float32)
    out = Tensor.empty((3,))
    ops.swiglu(out, Tensor.from_numpy(gate), Tensor.from_numpy(np.full(3, 2.0, np.float32)))
    np.testing.assert_array_equal(out.numpy(), [0.0, 2000.0, 0.0])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_nan_gate_when_swiglu_then_nan_out(dtype: DataType):
    gate = np.array([np.nan, 1.0] * 5, dtype=np.float32)  # 10: a full SIMD block and a tail
    out = Tensor.empty((10,), dtype)
    ops.swiglu(out, to_tensor(gate, dtype), to_tensor(np.ones(10, np.float32), dtype))
    result = to_numpy(out)
    assert np.isnan(result[::2]).all() and not np.isnan(result[1::2]).any()


def test_different_shapes_when_swiglu_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        ops.swiglu(Tensor.empty((2, 3)), Tensor.empty((2, 3)), Tensor.empty((3, 2)))


def test_mixed_dtypes_when_swiglu_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        ops.swiglu(Tensor.empty((4,)), Tensor.empty((4,)), Tensor.empty((4,), DataType.F16))


def test_integer_operands_when_swiglu_then_dtype_error():
    t = Tensor.empty((4,), DataType.I64)
    with pytest.raises(llaisys.DTypeError):
        ops.swiglu(t, t, t)


def test_non_contiguous_gate_when_swiglu_then_shape_error():
    gate = Tensor.empty((3, 8)).slice(1, 0, 4)
    with pytest.raises(llaisys.ShapeError):
        ops.swiglu(Tensor.empty((3, 4)), gate, Tensor.empty((3, 4)))


def test_null_tensor_when_swiglu_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.swiglu(Tensor.empty((4,)), Tensor.empty((4,)), None)


@pytest.mark.skipif(inside_forced_path_rerun(), reason="already on a forced kernel path")
def test_generic_kernel_path_when_swiglu_then_module_passes():
    assert_module_passes_on_path(__file__)
