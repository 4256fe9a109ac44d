"""Model: the core decoder behind a Python handle, its KV caches and the batched decode.

A DecodeBatch is plain numpy, one row per token; Model.decode turns it into one
LlaisysBatch (include/llaisys/model.h) and raises the core's typed errors
(InvalidBatchError, KvCacheFullError, ...), on which the KV cache is unchanged.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InvalidBatchError, LlaisysError, check
from ..libllaisys import (
    LIB,
    LlaisysBatch,
    LlaisysKvCacheParams,
    LlaisysKvCacheStats,
    LlaisysModelMeta,
    LlaisysSamplingParams,
    llaisysKvLayout_t,
)
from ..tensor import DataType, DeviceType
from .config import ModelConfig
from .tokenizer import Tokenizer

# Decode steps the core leaves pending at most (LLAISYS_MAX_PENDING_DECODES in model.h).
MAX_PENDING_DECODES = 2

# One row of per-output sampling controls, laid out as LlaisysSamplingParams.
SAMPLING_DTYPE = np.dtype(
    [("temperature", np.float32), ("top_k", np.int32), ("top_p", np.float32),
     ("min_p", np.float32), ("seed", np.uint64)],
    align=True,
)
assert SAMPLING_DTYPE.itemsize == ctypes.sizeof(LlaisysSamplingParams)

_DTYPES = {"float32": DataType.F32, "f32": DataType.F32, "float16": DataType.F16,
           "f16": DataType.F16, "bfloat16": DataType.BF16, "bf16": DataType.BF16}
_FLOAT_BYTES = {DataType.F32: 4, DataType.F16: 2, DataType.BF16: 2}
_DEVICES = {"cpu": DeviceType.CPU, "nvidia": DeviceType.NVIDIA, "cuda": DeviceType.NVIDIA}
_LAYOUTS = {"slot": llaisysKvLayout_t.SLOT, "block": llaisysKvLayout_t.BLOCK}


@dataclass
class DecodeBatch:
    """Tokens of many sequences for one decode call (include/llaisys/model.h, LlaisysBatch)."""

    tokens: np.ndarray  # int64[n]
    positions: np.ndarray  # int64[n]
    seq_ids: np.ndarray  # int32[n]: SLOT sequence id, BLOCK row of block_tables
    output: np.ndarray | None = None  # int8[n]; None: the last token only
    # int32[n] or None: where >= 0, the token is the id this model sampled for that output
    # row of its previous decode call (taken on the device; tokens[i] is ignored there)
    prev_row: np.ndarray | None = None
    slots: np.ndarray | None = None  # int64[n], BLOCK only
    block_tables: np.ndarray | None = None  # int32[n_seqs, width], BLOCK only; -1 padded
    sampling: np.ndarray | None = None  # SAMPLING_DTYPE[n_out]
    want_logits: bool = False

    @property
    def n_outputs(self) -> int:
        return 1 if self.output is None else int(np.count_nonzero(self.output))


@dataclass
class DecodeResult:
    token_ids: np.ndarray | None  # int64[n_out], when the batch carried sampling
    logits: np.ndarray | None  # float32[n_out, vocab], when want_logits


class PendingDecode:
    """A queued decode step (Model.decode_async); wait() returns its DecodeResult."""

    def __init__(self, model: Model, result: DecodeResult):
        self._model = model
        self._result = result
        self.completed = False
        self.error: Exception | None = None  # the device fault that lost it

    def wait(self) -> DecodeResult:
        """The step's result, once the device has produced it (steps queued after it may
        still run); raises the device fault that lost it."""
        if not self.completed:
            pending = self._model._pending
            self._model.synchronize(len(pending) - 1 - pending.index(self))
        if self.error is not None:
            raise self.error
        return self._result


class KvStats(NamedTuple):
    capacity: int
    used: int
    free: int
    peak: int
    bytes: int


def _i64(value: int) -> ctypes.c_int64:
    return ctypes.c_int64(int(value))


class KvCache:
    """A KV cache of one model (SLOT or BLOCK layout); keeps its model alive."""

    def __init__(self, model: Model, layout: str, n_cells: int, block_size: int, n_seq_max: int):
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
        self.model = model
        self.layout = layout
        self.n_cells = int(n_cells)
        self.block_size = int(block_size) if layout == "block" else 1
        self.n_seq_max = int(n_seq_max)
        params = LlaisysKvCacheParams(int(_LAYOUTS[layout]), self.n_cells, self.block_size,
                                      self.n_seq_max)
        handle = ctypes.c_void_p()
        check(LIB.llaisysKvCacheCreate(model.handle, ctypes.byref(params), ctypes.byref(handle)))
        self._handle = handle

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            LIB.llaisysKvCacheDestroy(handle)
            self._handle = None

    @property
    def handle(self) -> ctypes.c_void_p:
        return self._handle

    @property
    def n_blocks(self) -> int:
        return self.n_cells // self.block_size

    def stats(self) -> KvStats:
        out = LlaisysKvCacheStats()
        check(LIB.llaisysKvCacheGetStats(self._handle, ctypes.byref(out)))
        return KvStats(out.capacity, out.used, out.free, out.peak, out.bytes)

    def clear(self) -> None:
        check(LIB.llaisysKvCacheClear(self._handle))

    def release_blocks(self, block_ids: Iterable[int]) -> None:
        ids = np.ascontiguousarray(list(block_ids), dtype=np.int32)
        check(LIB.llaisysKvCacheReleaseBlocks(
            self._handle, ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), ids.size))

    def seq_remove(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        check(LIB.llaisysKvSeqRemove(self._handle, seq, _i64(p0), _i64(p1)))

    def seq_copy(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        check(LIB.llaisysKvSeqCopy(self._handle, src, dst, _i64(p0), _i64(p1)))

    def seq_keep(self, seq: int) -> None:
        check(LIB.llaisysKvSeqKeep(self._handle, seq))

    def seq_pos_max(self, seq: int) -> int:
        out = ctypes.c_int64()
        check(LIB.llaisysKvSeqPosMax(self._handle, seq, ctypes.byref(out)))
        return out.value


def _ptr(array: np.ndarray | None, ctype: type):
    return None if array is None else array.ctypes.data_as(ctypes.POINTER(ctype))


def _column(batch: DecodeBatch, field: str, dtype: type, n: int) -> np.ndarray | None:
    value = getattr(batch, field)
    if value is None:
        return None
    array = np.ascontiguousarray(value, dtype=dtype)
    if array.shape != (n,):
        raise InvalidBatchError(f"invalid batch: {field} has shape {array.shape}, expected ({n},)")
    return array


class Model:
    """One loaded model on one device; decode runs batches against its KV caches."""

    def __init__(self, config: ModelConfig, *, dtype: DataType, device: DeviceType,
                 device_id: int, tokenizer: Tokenizer | None = None):
        self.config = config
        self.dtype = dtype
        self.device = device
        self.device_id = device_id
        self._tokenizer = tokenizer
        self._pending: deque[PendingDecode] = deque()  # queued steps, oldest first
        # Bytes of the weights handed to the core (it copies them; it may widen tensors it
        # does not keep quantized, e.g. a GGUF's embedding table, to the compute dtype).
        self.weight_bytes = 0
        meta = LlaisysModelMeta(
            dtype=int(dtype), n_layer=config.num_layers, hidden_size=config.hidden_size,
            n_head=config.num_heads, n_kv_head=config.num_kv_heads, head_dim=config.head_dim,
            intermediate_size=config.intermediate_size, vocab_size=config.vocab_size,
            max_position=config.max_position, rms_norm_eps=config.rms_norm_eps,
            rope_theta=config.rope_theta, attention_bias=int(config.attention_bias),
            tie_word_embeddings=int(config.tie_word_embeddings))
        handle = ctypes.c_void_p()
        check(LIB.llaisysModelCreate(ctypes.byref(meta), int(device), device_id,
                                     ctypes.byref(handle)))
        self._handle = handle

    @classmethod
    def load(cls, path: str | Path | None = None, *, dtype: str | None = None,
             device: str = "cpu", device_id: int = 0) -> Model:
        """Loads a Hugging Face directory or GGUF file (None: the default model)."""
        from .default_model import default_model
        from .loader import load_checkpoint

        checkpoint = load_checkpoint(default_model() if path is None else path)
        model = cls.from_config(checkpoint.config, checkpoint.iter_weights(), dtype=dtype,
                                device=device, device_id=device_id)
        model._tokenizer = checkpoint.tokenizer()
        return model

    @classmethod
    def from_config(cls, config: ModelConfig, weights: Iterable, *, dtype: str | None = None,
                    device: str = "cpu", device_id: int = 0,
                    tokenizer: Tokenizer | None = None) -> Model:
        """Builds a model from a config and WeightTensors (name, data, dtype, shape).

        dtype: "float32" | "float16" | "bfloat16" (and short forms); None: config.dtype.
        """
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if device not in _DEVICES:
            raise ValueError(f"device must be one of {sorted(_DEVICES)}, got {device!r}")
        model = cls(config, dtype=config.dtype if dtype is None else _DTYPES[dtype],
                    device=_DEVICES[device], device_id=device_id, tokenizer=tokenizer)
        for w in weights:
            model.set_weight(w.name, w.data, w.dtype, w.shape)
        check(LIB.llaisysModelCheckWeights(model.handle))
        return model

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            LIB.llaisysModelDestroy(handle)
            self._handle = None

    @property
    def handle(self) -> ctypes.c_void_p:
        return self._handle

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            raise ValueError("this model was built without a tokenizer")
        return self._tokenizer

    def set_weight(self, name: str, data: np.ndarray, dtype: DataType,
                   shape: tuple[int, ...]) -> None:
        """Uploads one weight by its Hugging Face name (the core copies it)."""
        if name == "lm_head.weight" and self.config.tie_word_embeddings:
            return  # tied: the core reads lm_head from model.embed_tokens.weight
        data = np.ascontiguousarray(data)
        self.weight_bytes += data.nbytes
        dims = (ctypes.c_size_t * max(len(shape), 1))(*shape)
        check(LIB.llaisysModelSetWeight(self._handle, name.encode(), data.ctypes.data,
                                        int(dtype), dims, len(shape)))

    def kv_bytes_per_token(self) -> int:
        """Device bytes one token's K and V take over all layers."""
        c = self.config
        return 2 * c.num_layers * c.num_kv_heads * c.head_dim * _FLOAT_BYTES[self.dtype]

    def create_kv_cache(self, layout: str = "block", n_cells: int | None = None,
                        block_size: int = 16, n_seq_max: int = 1) -> KvCache:
        """n_cells None: max_position cells (rounded up to whole blocks)."""
        if n_cells is None:
            step = block_size if layout == "block" else 1
            n_cells = -(-self.config.max_position // step) * step
        return KvCache(self, layout, n_cells, block_size, n_seq_max)

    def decode(self, kv: KvCache, batch: DecodeBatch) -> DecodeResult:
        """Runs one batch; on any error the KV cache is exactly as before."""
        return self.decode_async(kv, batch).wait()

    def decode_async(self, kv: KvCache, batch: DecodeBatch) -> PendingDecode:
        """Queues one batch and returns at once on the GPU (llaisysModelDecodeAsync): the
        host may prepare the next batch while the device computes this one. The batch's
        arrays may be reused on return; the result is read with wait(). Errors found before
        the step runs raise here, the KV cache unchanged."""
        n = int(np.asarray(batch.tokens).size)
        tokens = _column(batch, "tokens", np.int64, n)
        positions = _column(batch, "positions", np.int64, n)
        seq_ids = _column(batch, "seq_ids", np.int32, n)
        output = _column(batch, "output", np.int8, n)
        prev_row = _column(batch, "prev_row", np.int32, n)
        slots = _column(batch, "slots", np.int64, n)
        tables = None
        if batch.block_tables is not None:
            tables = np.ascontiguousarray(batch.block_tables, dtype=np.int32)
            if tables.ndim != 2:
                raise InvalidBatchError(
                    f"invalid batch: block_tables must be 2-D, got shape {tables.shape}")
        n_out = batch.n_outputs
        sampling = token_ids = logits = None
        if batch.sampling is not None:
            sampling = np.ascontiguousarray(batch.sampling, dtype=SAMPLING_DTYPE)
            if sampling.shape != (n_out,):
                raise InvalidBatchError(f"invalid batch: sampling has shape {sampling.shape}, "
                                        f"expected ({n_out},) (one row per output)")
            token_ids = np.empty(n_out, dtype=np.int64)
        if batch.want_logits:
            logits = np.empty((n_out, self.config.vocab_size), dtype=np.float32)
        c_batch = LlaisysBatch(
            n_tokens=n,
            token=_ptr(tokens, ctypes.c_int64),
            pos=_ptr(positions, ctypes.c_int64),
            seq_id=_ptr(seq_ids, ctypes.c_int32),
            output=_ptr(output, ctypes.c_int8),
            prev_row=_ptr(prev_row, ctypes.c_int32),
            slot=_ptr(slots, ctypes.c_int64),
            n_seqs=0 if tables is None else tables.shape[0],
            block_table_width=0 if tables is None else tables.shape[1],
            block_tables=_ptr(tables, ctypes.c_int32),
            sampling=_ptr(sampling, LlaisysSamplingParams),
            out_token=_ptr(token_ids, ctypes.c_int64),
            out_logits=_ptr(logits, ctypes.c_float),
        )
        try:
            check(LIB.llaisysModelDecodeAsync(self._handle, kv.handle, ctypes.byref(c_batch)))
        except LlaisysError:
            # Nothing of this call is pending; past its checks the core waited for every
            # step already, else this waits now: either way the bookkeeping stays exact.
            self.synchronize(0)
            raise
        if len(self._pending) == MAX_PENDING_DECODES:  # the core waited for the oldest
            self._pending.popleft().completed = True
        # Held here as well as by the caller: the core may write token_ids after the
        # caller dropped its handle (a later call waits for it).
        step = PendingDecode(self, DecodeResult(token_ids=token_ids, logits=logits))
        self._pending.append(step)
        if batch.want_logits:  # the core read the logits back: every step before is complete
            self._complete(0)
        return step

    def synchronize(self, max_pending: int = 0) -> None:
        """Waits for pending steps, oldest first, until at most max_pending remain
        (llaisysModelSynchronize); their results are then complete."""
        if not isinstance(max_pending, int) or max_pending < 0:
            raise ValueError(f"max_pending must be an integer >= 0, got {max_pending!r}")
        if len(self._pending) > max_pending:
            try:
                check(LIB.llaisysModelSynchronize(self._handle, max_pending))
            except LlaisysError as e:  # a device fault: no step is pending in the core now
                for step in self._pending:
                    step.error, step.completed = e, True
                self._pending.clear()
                raise
            self._complete(max_pending)

    def _complete(self, max_pending: int) -> None:
        while len(self._pending) > max_pending:
            self._pending.popleft().completed = True
