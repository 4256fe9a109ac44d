"""Enums and structs of include/llaisys/*.h."""

from __future__ import annotations

import ctypes
from enum import IntEnum

c_size_p = ctypes.POINTER(ctypes.c_size_t)


class llaisysDeviceType_t(IntEnum):  # noqa: N801 - mirrors the C name
    CPU = 0
    NVIDIA = 1


class llaisysDataType_t(IntEnum):  # noqa: N801
    INVALID = 0
    F32 = 1
    F16 = 2
    BF16 = 3
    I32 = 4
    I64 = 5
    I8 = 6
    U8 = 7
    Q8_0 = 8
    Q4_0 = 9
    Q4_1 = 10


class llaisysStatus_t(IntEnum):  # noqa: N801
    OK = 0
    ERR_INVALID_ARGUMENT = 1
    ERR_SHAPE = 2
    ERR_DTYPE = 3
    ERR_DEVICE = 4
    ERR_OUT_OF_MEMORY = 5
    ERR_NO_KV_SPACE = 6
    ERR_INVALID_BATCH = 7
    ERR_UNSUPPORTED = 8
    ERR_INTERNAL = 9


class llaisysKvLayout_t(IntEnum):  # noqa: N801
    SLOT = 0
    BLOCK = 1


class llaisysMemcpyKind_t(IntEnum):  # noqa: N801
    H2H = 0
    H2D = 1
    D2H = 2
    D2D = 3


class LlaisysRuntimeAPI(ctypes.Structure):
    _fields_ = [
        ("get_device_count", ctypes.CFUNCTYPE(ctypes.c_int)),
        ("set_device", ctypes.CFUNCTYPE(None, ctypes.c_int)),
        ("device_synchronize", ctypes.CFUNCTYPE(None)),
        ("create_stream", ctypes.CFUNCTYPE(ctypes.c_void_p)),
        ("destroy_stream", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
        ("stream_synchronize", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
        ("malloc_device", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)),
        ("free_device", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
        ("malloc_host", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)),
        ("free_host", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
        (
            "memcpy_sync",
            ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int),
        ),
        (
            "memcpy_async",
            ctypes.CFUNCTYPE(
                None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                ctypes.c_void_p,
            ),
        ),
    ]


class LlaisysSamplingParams(ctypes.Structure):
    _fields_ = [
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("seed", ctypes.c_uint64),
    ]


class LlaisysModelMeta(ctypes.Structure):
    _fields_ = [
        ("dtype", ctypes.c_int),
        ("n_layer", ctypes.c_size_t),
        ("hidden_size", ctypes.c_size_t),
        ("n_head", ctypes.c_size_t),
        ("n_kv_head", ctypes.c_size_t),
        ("head_dim", ctypes.c_size_t),
        ("intermediate_size", ctypes.c_size_t),
        ("vocab_size", ctypes.c_size_t),
        ("max_position", ctypes.c_size_t),
        ("rms_norm_eps", ctypes.c_float),
        ("rope_theta", ctypes.c_float),
        ("attention_bias", ctypes.c_int32),
        ("tie_word_embeddings", ctypes.c_int32),
    ]


class LlaisysKvCacheParams(ctypes.Structure):
    _fields_ = [
        ("layout", ctypes.c_int),
        ("n_cells", ctypes.c_size_t),
        ("block_size", ctypes.c_size_t),
        ("n_seq_max", ctypes.c_int32),
    ]


class LlaisysKvCacheStats(ctypes.Structure):
    _fields_ = [
        ("capacity", ctypes.c_size_t),
        ("used", ctypes.c_size_t),
        ("free", ctypes.c_size_t),
        ("peak", ctypes.c_size_t),
        ("bytes", ctypes.c_size_t),
    ]


class LlaisysBatch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", ctypes.POINTER(ctypes.c_int64)),
        ("pos", ctypes.POINTER(ctypes.c_int64)),
        ("seq_id", ctypes.POINTER(ctypes.c_int32)),
        ("output", ctypes.POINTER(ctypes.c_int8)),
        ("prev_row", ctypes.POINTER(ctypes.c_int32)),
        ("slot", ctypes.POINTER(ctypes.c_int64)),
        ("n_seqs", ctypes.c_int32),
        ("block_table_width", ctypes.c_int32),
        ("block_tables", ctypes.POINTER(ctypes.c_int32)),
        ("sampling", ctypes.POINTER(LlaisysSamplingParams)),
        ("out_token", ctypes.POINTER(ctypes.c_int64)),
        ("out_logits", ctypes.POINTER(ctypes.c_float)),
    ]
