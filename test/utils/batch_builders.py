"""Decode batches for tests: the one place that turns per-sequence chunks into a DecodeBatch.

    build_decode_batch([SeqChunk(0, [5, 6, 7]), SeqChunk(1, [9], start=4)], layout="slot")

BLOCK batches name every token's slot and every sequence's block table; a BlockBatchState
carries one logical request's blocks across decode calls, taking blocks from a BlockPool
as its positions grow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from llaisys.models import SAMPLING_DTYPE, DecodeBatch, DecodeResult, Model


@dataclass
class SeqChunk:
    """Tokens of one sequence at positions start, start + 1, ...

    outputs: "last", "all", "none" or the indices (within the chunk) producing output rows.
    """

    seq_id: int
    tokens: Sequence[int]
    start: int = 0
    outputs: str | Sequence[int] = "last"

    def output_flags(self) -> np.ndarray:
        n = len(self.tokens)
        flags = np.zeros(n, dtype=np.int8)
        if self.outputs == "all":
            flags[:] = 1
        elif self.outputs == "last":
            flags[-1] = 1
        elif self.outputs != "none":
            flags[list(self.outputs)] = 1
        return flags


class BlockPool:
    """Free physical blocks of a BLOCK cache, lowest id first."""

    def __init__(self, n_blocks: int):
        self.free = list(range(n_blocks))

    def allocate(self) -> int:
        if not self.free:
            raise RuntimeError("block pool exhausted")
        return self.free.pop(0)

    def release(self, blocks: Sequence[int]) -> None:
        self.free = sorted(set(self.free) | set(blocks))


class BlockBatchState:
    """The block table of one logical request; blocks may start shared with another state."""

    def __init__(self, pool: BlockPool, block_size: int, blocks: Sequence[int] = ()):
        self.pool = pool
        self.block_size = block_size
        self.blocks = list(blocks)

    def ensure(self, n_positions: int) -> None:
        """Allocates blocks until positions 0..n_positions-1 have one."""
        while len(self.blocks) * self.block_size < n_positions:
            self.blocks.append(self.pool.allocate())

    def slot(self, pos: int) -> int:
        return self.blocks[pos // self.block_size] * self.block_size + pos % self.block_size

    def release(self) -> list[int]:
        blocks, self.blocks = self.blocks, []
        self.pool.release(blocks)
        return blocks


def sampling_rows(n: int, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                  min_p: float = 0.0, seed: int = 0) -> np.ndarray:
    rows = np.zeros(n, dtype=SAMPLING_DTYPE)
    rows["temperature"], rows["top_k"], rows["top_p"] = temperature, top_k, top_p
    rows["min_p"], rows["seed"] = min_p, seed
    return rows


def build_decode_batch(
    chunks: Sequence[SeqChunk],
    layout: str = "slot",
    states: Mapping[int, BlockBatchState] | None = None,
    *,
    sampling: Mapping[str, float] | None = None,
    want_logits: bool = True,
) -> DecodeBatch:
    """One DecodeBatch of the chunks, in order.

    BLOCK: states maps each seq_id to its BlockBatchState (grown to cover the chunk); the
    batch's block_tables row of a sequence is its first appearance among the chunks.
    sampling: keyword arguments of sampling_rows applied to every output row.
    """
    if layout not in ("slot", "block"):
        raise ValueError(f"layout must be 'slot' or 'block', got {layout!r}")
    tokens = np.concatenate([np.asarray(c.tokens, dtype=np.int64) for c in chunks])
    positions = np.concatenate(
        [np.arange(c.start, c.start + len(c.tokens), dtype=np.int64) for c in chunks])
    output = np.concatenate([c.output_flags() for c in chunks])
    batch = DecodeBatch(tokens=tokens, positions=positions,
                        seq_ids=np.concatenate([np.full(len(c.tokens), c.seq_id, np.int32)
                                                for c in chunks]),
                        output=output, want_logits=want_logits)
    if sampling is not None:
        batch.sampling = sampling_rows(int(output.sum()), **sampling)
    if layout == "slot":
        return batch
    if states is None:
        raise ValueError("a BLOCK batch needs the BlockBatchState of every sequence")
    rows: dict[int, int] = {}
    for c in chunks:
        rows.setdefault(c.seq_id, len(rows))
        states[c.seq_id].ensure(c.start + len(c.tokens))
    width = max(len(states[s].blocks) for s in rows)
    tables = np.full((len(rows), width), -1, dtype=np.int32)
    for s, r in rows.items():
        tables[r, : len(states[s].blocks)] = states[s].blocks
    batch.seq_ids = np.array([rows[int(s)] for s in batch.seq_ids], dtype=np.int32)
    batch.slots = np.array([states[c.seq_id].slot(p) for c in chunks
                            for p in range(c.start, c.start + len(c.tokens))], dtype=np.int64)
    batch.block_tables = tables
    return batch


class CacheRunner:
    """A model's KV cache of one layout with the block states of its sequences: tests
    decode chunks without tracking blocks themselves."""

    def __init__(self, model: Model, layout: str, n_cells: int = 128, block_size: int = 4,
                 n_seq_max: int = 4):
        self.model, self.layout, self.block_size = model, layout, block_size
        self.kv = model.create_kv_cache(layout, n_cells, block_size=block_size,
                                        n_seq_max=n_seq_max)
        self.pool = BlockPool(n_cells // block_size)
        self.states: dict[int, BlockBatchState] = {}

    def batch(self, chunks: Sequence[SeqChunk], **kw) -> DecodeBatch:
        for c in chunks:
            self.states.setdefault(c.seq_id, BlockBatchState(self.pool, self.block_size))
        return build_decode_batch(chunks, self.layout, self.states, **kw)

    def decode(self, chunks: Sequence[SeqChunk], **kw) -> DecodeResult:
        return self.model.decode(self.kv, self.batch(chunks, **kw))
