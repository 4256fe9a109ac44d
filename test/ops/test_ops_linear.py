"""llaisysLinear: out[m, n] = in[m, k] . weight[n, k]^T + bias[n], bias optional.

Float weights share the activations' dtype; Q8_0/Q4_0/Q4_1 weights (GGUF blocks) take f32
activations and are compared with an f64 product over gguf's own dequantization. The whole
module runs once more per lower kernel path (LLAISYS_CPU_PATH=generic|avx2) in a subprocess,
since the path is chosen once per process.
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType, quants

import llaisys
from llaisys import DataType, Tensor, ops
from test.utils.op_helpers import (
    FLOAT_DTYPES,
    assert_close,
    assert_module_passes_on_path,
    inside_forced_path_rerun,
    padded_rows,
    random_values,
    to_numpy,
    to_tensor,
)

QUANT_TYPES = {
    DataType.Q8_0: GGMLQuantizationType.Q8_0,
    DataType.Q4_0: GGMLQuantizationType.Q4_0,
    DataType.Q4_1: GGMLQuantizationType.Q4_1,
}

# (m, k, n): decode rows (streaming tiles) and >= 32 rows (BLAS / bf16-dot paths), with odd
# k (tails after the 32-element chunks) and odd n (tails after the 4-row weight blocks).
FLOAT_SHAPES = [(1, 7, 7), (1, 4097, 576), (7, 576, 4097), (64, 33, 576), (513, 576, 7),
                (513, 4097, 64),
                # k a multiple of 8: the GPU's GEMV path (m <= 8), narrow and wide W
                (1, 576, 37), (1, 4096, 64), (3, 1536, 256), (8, 576, 4097),
                # more blocks than the GPU holds at once (many waves, the last block
                # part-filled), with 1 and 4 warps a column
                (1, 64, 50001), (5, 64, 30001), (1, 4480, 1536)]
QUANT_SHAPES = [(1, 32, 7), (1, 576, 1536), (7, 4096, 33), (40, 576, 65), (64, 576, 576),
                (513, 576, 64)]  # 40 rows: tiles (quantized weights reach sgemm from 64)


def _case(rng: np.random.Generator, m: int, k: int, n: int, dtype: DataType):
    """Inputs scaled by 1/sqrt(k) so outputs stay O(1) whatever k is."""
    x = random_values(rng, (m, k), dtype, scale=k**-0.5)
    w = random_values(rng, (n, k), dtype)
    b = random_values(rng, (n,), dtype)
    return x, w, b


def _reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    out = x.astype(np.float64) @ w.astype(np.float64).T
    return out if b is None else out + b


def _quantized(rng: np.random.Generator, n: int, k: int, dtype: DataType):
    """A quantized weight tensor and the f32 values its blocks stand for."""
    blocks = quants.quantize(rng.standard_normal((n, k)).astype(np.float32), QUANT_TYPES[dtype])
    w = Tensor.empty((n, k), dtype)
    w.load(blocks)
    return w, quants.dequantize(blocks, QUANT_TYPES[dtype])


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", FLOAT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_random_float_operands_when_linear_then_matches_reference(
    dtype: DataType, shape: tuple[int, int, int], with_bias: bool
):
    m, k, n = shape
    x, w, b = _case(np.random.default_rng(m * 7 + k + n), m, k, n, dtype)
    out = Tensor.empty((m, n), dtype)
    ops.linear(out, to_tensor(x, dtype), to_tensor(w, dtype),
               to_tensor(b, dtype) if with_bias else None)
    assert_close(to_numpy(out), _reference(x, w, b if with_bias else None), dtype)


@pytest.mark.parametrize("m", [2, 7, 64, 513])  # one row has no stride
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_row_strided_input_when_linear_then_matches_reference(dtype: DataType, m: int):
    k, n = 576, 37
    x, w, b = _case(np.random.default_rng(m), m, k, n, dtype)
    out = Tensor.empty((m, n), dtype)
    ops.linear(out, padded_rows(x, dtype, pad=5), to_tensor(w, dtype), to_tensor(b, dtype))
    assert_close(to_numpy(out), _reference(x, w, b), dtype)


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", QUANT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("wtype", list(QUANT_TYPES), ids=lambda d: d.name)
def test_quantized_weight_when_linear_then_matches_dequantized_reference(
    wtype: DataType, shape: tuple[int, int, int], with_bias: bool
):
    m, k, n = shape
    rng = np.random.default_rng(m + k + n)
    w, w_values = _quantized(rng, n, k, wtype)
    x = random_values(rng, (m, k), DataType.F32, scale=k**-0.5)
    b = random_values(rng, (n,), DataType.F32)
    out = Tensor.empty((m, n))
    ops.linear(out, Tensor.from_numpy(x), w, Tensor.from_numpy(b) if with_bias else None)
    assert_close(out.numpy(), _reference(x, w_values, b if with_bias else None), DataType.F32)


@pytest.mark.parametrize("wtype", list(QUANT_TYPES), ids=lambda d: d.name)
def test_gguf_blocks_on_the_gpu_when_linear_then_dtype_error(wtype: DataType, test_device: str):
    if test_device != "nvidia":
        pytest.skip("the GPU refuses GGUF blocks; the CPU takes them (tests above)")
    w, _ = _quantized(np.random.default_rng(4), 8, 64, wtype)
    with pytest.raises(llaisys.DTypeError):
        ops.linear(Tensor.empty((1, 8)), Tensor.from_numpy(np.ones((1, 64), np.float32)), w)


@pytest.mark.parametrize("wtype", list(QUANT_TYPES), ids=lambda d: d.name)
def test_row_strided_input_when_quantized_linear_then_matches_reference(wtype: DataType):
    m, k, n = 9, 64, 13
    rng = np.random.default_rng(3)
    w, w_values = _quantized(rng, n, k, wtype)
    x = random_values(rng, (m, k), DataType.F32)
    out = Tensor.empty((m, n))
    ops.linear(out, padded_rows(x, DataType.F32), w, None)
    assert_close(out.numpy(), _reference(x, w_values, None), DataType.F32)


def _one_block(dtype: DataType) -> tuple[np.ndarray, np.ndarray]:
    """One hand-built block per GGUF's layout and the 32 values it encodes."""
    q = np.arange(32) % 16
    if dtype == DataType.Q8_0:  # f16 d + 32 x int8: y = d*q
        q = np.arange(32) - 16
        raw = np.float16(0.5).tobytes() + q.astype(np.int8).tobytes()
        return np.frombuffer(raw, np.uint8), 0.5 * q
    # Q4_*: byte j holds element j in its low nibble and element j + 16 in its high one.
    nibbles = (q[:16] | (q[16:][::-1] << 4)).astype(np.uint8).tobytes()
    values = np.concatenate([q[:16], q[16:][::-1]]).astype(np.float64)
    if dtype == DataType.Q4_0:  # f16 d + nibbles: y = d*(q - 8)
        return np.frombuffer(np.float16(2.0).tobytes() + nibbles, np.uint8), 2.0 * (values - 8)
    raw = np.float16(0.25).tobytes() + np.float16(-1.0).tobytes() + nibbles  # y = d*q + m
    return np.frombuffer(raw, np.uint8), 0.25 * values - 1.0


@pytest.mark.parametrize("wtype", list(QUANT_TYPES), ids=lambda d: d.name)
def test_hand_built_block_when_linear_with_identity_then_reads_each_element(wtype: DataType):
    block, values = _one_block(wtype)
    np.testing.assert_array_equal(quants.dequantize(block[None], QUANT_TYPES[wtype])[0], values)
    w = Tensor.empty((1, 32), wtype)
    w.load(block)
    out = Tensor.empty((32, 1))
    ops.linear(out, Tensor.from_numpy(np.eye(32, dtype=np.float32)), w, None)
    np.testing.assert_array_equal(out.numpy()[:, 0], values)


def _raises(exc: type[Exception], out, inp, weight, bias=None) -> None:
    with pytest.raises(exc):
        ops.linear(out, inp, weight, bias)


def test_k_mismatch_when_linear_then_shape_error():
    _raises(llaisys.ShapeError, Tensor.empty((2, 3)), Tensor.empty((2, 4)), Tensor.empty((3, 5)))


def test_wrong_out_shape_when_linear_then_shape_error():
    _raises(llaisys.ShapeError, Tensor.empty((2, 4)), Tensor.empty((2, 5)), Tensor.empty((3, 5)))


def test_wrong_bias_shape_when_linear_then_shape_error():
    _raises(llaisys.ShapeError, Tensor.empty((2, 3)), Tensor.empty((2, 5)), Tensor.empty((3, 5)),
            Tensor.empty((4,)))


def test_one_dim_input_when_linear_then_shape_error():
    _raises(llaisys.ShapeError, Tensor.empty((1, 3)), Tensor.empty((5,)), Tensor.empty((3, 5)))


def test_non_contiguous_weight_when_linear_then_shape_error():
    weight = Tensor.empty((5, 3)).permute(1, 0)
    _raises(llaisys.ShapeError, Tensor.empty((2, 3)), Tensor.empty((2, 5)), weight)


def test_column_strided_input_when_linear_then_shape_error():
    inp = Tensor.empty((5, 2)).permute(1, 0)
    _raises(llaisys.ShapeError, Tensor.empty((2, 3)), inp, Tensor.empty((3, 5)))


def test_mixed_float_dtypes_when_linear_then_dtype_error():
    _raises(llaisys.DTypeError, Tensor.empty((2, 3)), Tensor.empty((2, 5)),
            Tensor.empty((3, 5), DataType.BF16))


def test_bias_dtype_differs_when_linear_then_dtype_error():
    _raises(llaisys.DTypeError, Tensor.empty((2, 3)), Tensor.empty((2, 5)), Tensor.empty((3, 5)),
            Tensor.empty((3,), DataType.F16))


@pytest.mark.parametrize("wtype", list(QUANT_TYPES), ids=lambda d: d.name)
def test_quantized_weight_with_f16_activations_when_linear_then_dtype_error(wtype: DataType):
    _raises(llaisys.DTypeError, Tensor.empty((2, 3), DataType.F16),
            Tensor.empty((2, 32), DataType.F16), Tensor.empty((3, 32), wtype))


def test_integer_weight_when_linear_then_dtype_error():
    t = Tensor.empty((3, 5), DataType.I32)
    _raises(llaisys.DTypeError, Tensor.empty((3, 3), DataType.I32), t, t)


def test_empty_input_when_linear_then_invalid_argument():
    _raises(llaisys.InvalidArgumentError, Tensor.empty((0, 3)), Tensor.empty((0, 5)),
            Tensor.empty((3, 5)))


@pytest.mark.parametrize("null", ["out", "in", "weight"])
def test_null_tensor_when_linear_then_invalid_argument(null: str):
    args = {"out": Tensor.empty((2, 3)), "in": Tensor.empty((2, 5)), "weight": Tensor.empty((3, 5))}
    args[null] = None
    _raises(llaisys.InvalidArgumentError, args["out"], args["in"], args["weight"])


@pytest.mark.skipif(inside_forced_path_rerun(), reason="already on a forced kernel path")
@pytest.mark.parametrize("path", ["generic", "avx2"])
def test_forced_lower_kernel_path_when_linear_then_module_passes(path: str):
    assert_module_passes_on_path(__file__, path)
