"""include/llaisys/ops.h."""

import ctypes

from .tensor import llaisysTensor_t
from .types import LlaisysSamplingParams


def declare(lib: ctypes.CDLL) -> None:
    T = llaisysTensor_t
    signatures = {
        "llaisysAdd": [T, T, T],
        "llaisysArgmax": [T, T, T],
        "llaisysEmbedding": [T, T, T],
        "llaisysLinear": [T, T, T, T],
        "llaisysRmsNorm": [T, T, T, ctypes.c_float],
        "llaisysAddRmsNorm": [T, T, T, T, ctypes.c_float],
        "llaisysRope": [T, T, T, ctypes.c_float],
        "llaisysSelfAttention": [T, T, T, T, ctypes.c_float],
        "llaisysSwiGLU": [T, T, T],
        "llaisysLinearSwiGLU": [T, T, T, T, T, T, T, T],
        "llaisysRearrange": [T, T],
        "llaisysSample": [T, T, ctypes.POINTER(LlaisysSamplingParams)],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
