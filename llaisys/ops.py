"""Operators over Tensors (include/llaisys/ops.h); results go into given outputs."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from .errors import check
from .libllaisys import LIB, LlaisysSamplingParams
from .tensor import Tensor


def _h(t: Tensor | None):
    return None if t is None else t.handle


def add(c: Tensor, a: Tensor, b: Tensor) -> None:
    check(LIB.llaisysAdd(_h(c), _h(a), _h(b)))


def argmax(max_idx: Tensor, max_val: Tensor, vals: Tensor) -> None:
    check(LIB.llaisysArgmax(_h(max_idx), _h(max_val), _h(vals)))


def embedding(out: Tensor, index: Tensor, weight: Tensor) -> None:
    check(LIB.llaisysEmbedding(_h(out), _h(index), _h(weight)))


def linear(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | None = None) -> None:
    check(LIB.llaisysLinear(_h(out), _h(inp), _h(weight), _h(bias)))


def rms_norm(out: Tensor, inp: Tensor, weight: Tensor, eps: float) -> None:
    check(LIB.llaisysRmsNorm(_h(out), _h(inp), _h(weight), eps))


def add_rms_norm(out: Tensor, x: Tensor, residual: Tensor, weight: Tensor, eps: float) -> None:
    """x += residual, then out = rms_norm(x, weight, eps)."""
    check(LIB.llaisysAddRmsNorm(_h(out), _h(x), _h(residual), _h(weight), eps))


def rope(out: Tensor, inp: Tensor, pos_ids: Tensor, theta: float) -> None:
    check(LIB.llaisysRope(_h(out), _h(inp), _h(pos_ids), theta))


def self_attention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, scale: float) -> None:
    check(LIB.llaisysSelfAttention(_h(out), _h(q), _h(k), _h(v), scale))


def swiglu(out: Tensor, gate: Tensor, up: Tensor) -> None:
    check(LIB.llaisysSwiGLU(_h(out), _h(gate), _h(up)))


def linear_swiglu(out: Tensor, inp: Tensor, gate_weight: Tensor, up_weight: Tensor,
                  gate: Tensor, up: Tensor, gate_bias: Tensor | None = None,
                  up_bias: Tensor | None = None) -> None:
    """out = swiglu(linear(inp, gate_weight, gate_bias), linear(inp, up_weight, up_bias));
    gate and up are work space (their contents afterwards are unspecified)."""
    check(LIB.llaisysLinearSwiGLU(_h(out), _h(inp), _h(gate_weight), _h(gate_bias),
                                  _h(up_weight), _h(up_bias), _h(gate), _h(up)))


def rearrange(out: Tensor, inp: Tensor) -> None:
    check(LIB.llaisysRearrange(_h(out), _h(inp)))


def sample(out_ids: Tensor, logits: Tensor, params: Sequence[LlaisysSamplingParams]) -> None:
    arr = (LlaisysSamplingParams * max(len(params), 1))(*params)
    check(LIB.llaisysSample(_h(out_ids), _h(logits), ctypes.cast(arr, ctypes.POINTER(
        LlaisysSamplingParams))))
