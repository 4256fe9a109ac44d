"""include/llaisys/model.h."""

import ctypes

from .types import (
    LlaisysBatch,
    LlaisysKvCacheParams,
    LlaisysKvCacheStats,
    LlaisysModelMeta,
    c_size_p,
)

llaisysModel_t = ctypes.c_void_p  # noqa: N816 - mirrors the C name
llaisysKvCache_t = ctypes.c_void_p  # noqa: N816


def declare(lib: ctypes.CDLL) -> None:
    M, KV = llaisysModel_t, llaisysKvCache_t
    i32, i64 = ctypes.c_int32, ctypes.c_int64
    signatures = {
        "llaisysModelCreate": [ctypes.POINTER(LlaisysModelMeta), ctypes.c_int, ctypes.c_int,
                               ctypes.POINTER(M)],
        "llaisysModelGetMeta": [M, ctypes.POINTER(LlaisysModelMeta)],
        "llaisysModelSetWeight": [M, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, c_size_p,
                                  ctypes.c_size_t],
        "llaisysModelCheckWeights": [M],
        "llaisysKvCacheCreate": [M, ctypes.POINTER(LlaisysKvCacheParams), ctypes.POINTER(KV)],
        "llaisysKvCacheGetStats": [KV, ctypes.POINTER(LlaisysKvCacheStats)],
        "llaisysKvCacheClear": [KV],
        "llaisysKvCacheReleaseBlocks": [KV, ctypes.POINTER(i32), ctypes.c_size_t],
        "llaisysKvSeqRemove": [KV, i32, i64, i64],
        "llaisysKvSeqCopy": [KV, i32, i32, i64, i64],
        "llaisysKvSeqKeep": [KV, i32],
        "llaisysKvSeqPosMax": [KV, i32, ctypes.POINTER(i64)],
        "llaisysModelDecode": [M, KV, ctypes.POINTER(LlaisysBatch)],
        "llaisysModelDecodeAsync": [M, KV, ctypes.POINTER(LlaisysBatch)],
        "llaisysModelSynchronize": [M, i32],
        "llaisysModelFailAtLayer": [M, i32],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
    lib.llaisysModelDestroy.argtypes = [M]
    lib.llaisysModelDestroy.restype = None
    lib.llaisysKvCacheDestroy.argtypes = [KV]
    lib.llaisysKvCacheDestroy.restype = None
