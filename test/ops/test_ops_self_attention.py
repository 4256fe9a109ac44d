"""llaisysSelfAttention: causal grouped-query attention, queries at the end of the keys."""

from __future__ import annotations

import math

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
    to_torch,
)


def _reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """float64 softmax(q k^T * scale) v with query i seeing keys 0..klen-qlen+i."""
    qlen, nh, _ = q.shape
    klen, nkvh, _ = k.shape
    group = nh // nkvh
    tq = to_torch(q).transpose(0, 1)  # [nh, qlen, d]
    tk = to_torch(k).repeat_interleave(group, dim=1).transpose(0, 1)
    tv = to_torch(v).repeat_interleave(group, dim=1).transpose(0, 1)
    scores = tq @ tk.transpose(1, 2) * scale
    visible = np.tril(np.ones((qlen, klen), dtype=bool), k=klen - qlen)
    scores = scores.masked_fill(~to_torch(visible).bool(), float("-inf"))
    return (scores.softmax(dim=-1) @ tv).transpose(0, 1).numpy()


CASES = [
    # qlen, klen, heads, kv heads, d, dv
    (1, 1, 1, 1, 1, 1),
    (1, 37, 4, 2, 16, 16),  # decode against a history
    (7, 7, 6, 2, 8, 8),  # prefill
    (5, 130, 8, 1, 64, 32),  # offset queries over several key blocks, dv != d
    (3, 4097, 2, 1, 16, 16),
    (64, 64, 9, 3, 64, 64),  # SmolLM2-135M head layout
    # bf16/f16 on the GPU: tensor-core tiles of 64 queries, a tail of 8 left per token
    (200, 200, 12, 2, 128, 128),
    (77, 300, 6, 2, 128, 128),  # tiles after 223 cached keys, a tail of 13
    (150, 150, 4, 4, 64, 64),  # a tail tile of 22 queries
    (1, 1000, 12, 2, 128, 128),  # decode on the tensor cores, keys split over blocks
    (1, 300, 16, 1, 64, 64),  # the same, 16 query heads (the tile's rows) to one KV head
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("qlen, klen, nh, nkvh, d, dv", CASES)
def test_random_operands_when_self_attention_then_matches_reference(
    dtype: DataType, qlen: int, klen: int, nh: int, nkvh: int, d: int, dv: int
):
    rng = np.random.default_rng(13)
    q = random_values(rng, (qlen, nh, d), dtype)
    k = random_values(rng, (klen, nkvh, d), dtype)
    v = random_values(rng, (klen, nkvh, dv), dtype)
    scale = 1.0 / math.sqrt(d)
    out = Tensor.empty((qlen, nh, dv), dtype)
    ops.self_attention(out, to_tensor(q, dtype), to_tensor(k, dtype), to_tensor(v, dtype), scale)
    assert_close(to_numpy(out), _reference(q, k, v, scale), dtype)


def test_zero_scale_when_self_attention_then_mean_of_visible_values():
    rng = np.random.default_rng(14)
    q, k = random_values(rng, (3, 1, 4), DataType.F32), random_values(rng, (5, 1, 4), DataType.F32)
    v = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    out = Tensor.empty((3, 1, 1))
    ops.self_attention(out, Tensor.from_numpy(q), Tensor.from_numpy(k), Tensor.from_numpy(v), 0.0)
    np.testing.assert_allclose(out.numpy().ravel(), [1.0, 1.5, 2.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_operands_sliced_from_fused_qkv_when_self_attention_then_matches_reference(
    dtype: DataType,
):
    rng = np.random.default_rng(15)
    n, nh, nkvh, d = 9, 4, 2, 16
    qkv = random_values(rng, (n, nh + 2 * nkvh, d), dtype)
    fused = to_tensor(qkv, dtype)
    q = fused.slice(1, 0, nh)
    k = fused.slice(1, nh, nh + nkvh)
    v = fused.slice(1, nh + nkvh, nh + 2 * nkvh)
    out_wide = Tensor.empty((n, nh + 1, d), dtype)
    out = out_wide.slice(1, 0, nh)
    ops.self_attention(out, q, k, v, 0.25)
    expected = _reference(qkv[:, :nh], qkv[:, nh : nh + nkvh], qkv[:, nh + nkvh :], 0.25)
    assert_close(to_numpy(out), expected, dtype)


def _attend(out_shape, q_shape, k_shape, v_shape, dtype=DataType.F32, k_dtype=None):
    ops.self_attention(Tensor.empty(out_shape, dtype), Tensor.empty(q_shape, dtype),
                       Tensor.empty(k_shape, k_dtype or dtype), Tensor.empty(v_shape, dtype),
                       1.0)


def test_heads_not_multiple_of_kv_heads_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError, match="multiple"):
        _attend((2, 3, 4), (2, 3, 4), (2, 2, 4), (2, 2, 4))


def test_fewer_keys_than_queries_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        _attend((3, 2, 4), (3, 2, 4), (2, 1, 4), (2, 1, 4))


def test_key_dim_differs_from_query_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        _attend((2, 2, 4), (2, 2, 4), (2, 1, 8), (2, 1, 4))


def test_values_of_other_length_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        _attend((2, 2, 4), (2, 2, 4), (3, 1, 4), (2, 1, 4))


def test_out_of_wrong_shape_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        _attend((2, 2, 8), (2, 2, 4), (2, 1, 4), (2, 1, 4))


def test_two_dim_operand_when_self_attention_then_shape_error():
    with pytest.raises(llaisys.ShapeError):
        _attend((2, 8), (2, 2, 4), (2, 1, 4), (2, 1, 4))


def test_mixed_dtypes_when_self_attention_then_dtype_error():
    with pytest.raises(llaisys.DTypeError):
        _attend((2, 2, 4), (2, 2, 4), (2, 1, 4), (2, 1, 4), k_dtype=DataType.BF16)


def test_empty_head_dim_when_self_attention_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError):
        _attend((2, 2, 0), (2, 2, 0), (2, 1, 0), (2, 1, 0))


def test_null_tensor_when_self_attention_then_invalid_argument():
    t = Tensor.empty((2, 2, 4))
    with pytest.raises(llaisys.InvalidArgumentError):
        ops.self_attention(t, t, None, t, 1.0)


@pytest.mark.skipif(inside_forced_path_rerun(), reason="already on a forced kernel path")
def test_generic_kernel_path_when_self_attention_then_module_passes():
    assert_module_passes_on_path(__file__)
