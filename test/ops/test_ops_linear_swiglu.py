"""llaisysLinearSwiGLU: out = swiglu(in . gate_weight^T + gate_bias, in . up_weight^T + up_bias).

The reference rounds each product to the dtype, as a stored product is, then applies the
SwiGLU in float64. On the GPU, m <= 8 rows take the fused GEMV (gate and up columns
interleaved in one block, which writes out alone); 9 rows take linear then swiglu. The
whole module runs once more per lower CPU kernel path in a subprocess.
"""

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
    round_to,
    to_numpy,
    to_tensor,
)

# (m, k, n): one row and the GEMV's widest batch; odd n (a half-filled last block); k large
# enough, with a narrow W, for 2 and 4 warps a column; 9 rows past the fused path; more
# blocks of column pairs than the GPU holds at once.
SHAPES = [(1, 64, 7), (1, 1536, 96), (3, 2048, 40), (8, 1024, 33), (9, 256, 17), (1, 64, 25001)]


def _swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    g = gate.astype(np.float64)
    return up * g / (1.0 + np.exp(-g))


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_random_operands_when_linear_swiglu_then_matches_rounded_products_reference(
    dtype: DataType, shape: tuple[int, int, int], with_bias: bool
):
    m, k, n = shape
    rng = np.random.default_rng(m * 31 + k + n)
    x = random_values(rng, (m, k), dtype, scale=k**-0.5)
    wg, wu = random_values(rng, (n, k), dtype), random_values(rng, (n, k), dtype)
    bg, bu = random_values(rng, (n,), dtype), random_values(rng, (n,), dtype)
    out = Tensor.empty((m, n), dtype)
    ops.linear_swiglu(out, to_tensor(x, dtype), to_tensor(wg, dtype), to_tensor(wu, dtype),
                      Tensor.empty((m, n), dtype), Tensor.empty((m, n), dtype),
                      to_tensor(bg, dtype) if with_bias else None,
                      to_tensor(bu, dtype) if with_bias else None)
    x64 = x.astype(np.float64)
    gate = x64 @ wg.astype(np.float64).T + (bg if with_bias else 0.0)
    up = x64 @ wu.astype(np.float64).T + (bu if with_bias else 0.0)
    expected = _swiglu(round_to(gate.astype(np.float32), dtype),
                       round_to(up.astype(np.float32), dtype))
    assert_close(to_numpy(out), expected, dtype, scale=2.0)  # the products' and out's roundings


def test_out_shape_unlike_the_products_when_linear_swiglu_then_shape_error():
    x, w = Tensor.empty((2, 8)), Tensor.empty((4, 8))
    with pytest.raises(llaisys.ShapeError):
        ops.linear_swiglu(Tensor.empty((2, 5)), x, w, w, Tensor.empty((2, 4)),
                          Tensor.empty((2, 4)))


def test_up_weight_of_other_width_when_linear_swiglu_then_shape_error():
    x = Tensor.empty((2, 8))
    with pytest.raises(llaisys.ShapeError):
        ops.linear_swiglu(Tensor.empty((2, 4)), x, Tensor.empty((4, 8)), Tensor.empty((5, 8)),
                          Tensor.empty((2, 4)), Tensor.empty((2, 4)))


def test_mixed_dtypes_when_linear_swiglu_then_dtype_error():
    x, w = Tensor.empty((2, 8)), Tensor.empty((4, 8))
    with pytest.raises(llaisys.DTypeError):
        ops.linear_swiglu(Tensor.empty((2, 4), DataType.F16), x, w, w, Tensor.empty((2, 4)),
                          Tensor.empty((2, 4)))


def test_null_weight_when_linear_swiglu_then_invalid_argument():
    x, w = Tensor.empty((2, 8)), Tensor.empty((4, 8))
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.linear_swiglu(Tensor.empty((2, 4)), x, w, None, Tensor.empty((2, 4)),
                          Tensor.empty((2, 4)))


@pytest.mark.skipif(inside_forced_path_rerun(), reason="already on a forced kernel path")
def test_generic_kernel_path_when_linear_swiglu_then_module_passes():
    assert_module_passes_on_path(__file__)
