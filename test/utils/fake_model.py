"""A deterministic stand-in for llaisys.models.Model, for engine tests where the model
does not matter (scheduling, blocks, stops, sampling controls).

The fake keeps its own paged KV store and checks every batch the way the core does (slots
match block tables, positions consecutive, ids in range). An output row's logits are a
pure function of the tokens it reads back through its block table, so a wrong block
table, a bad prefix-cache hit or a lost token changes the output. Sampling uses the core's
sampling op, as the real model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llaisys.engine import GenerationOutput, LLMEngine, StreamChunk
from llaisys.engine.sampler import resample
from llaisys.errors import InvalidBatchError
from llaisys.models.model import DecodeBatch, DecodeResult

BOS, EOS = 256, 257
VOCAB = 300


class FakeTokenizer:
    """Bytes are tokens 0..255; 256 <s>, 257 </s>; 258.. decode as <id>."""

    eos_token_ids = [EOS]
    bos_token_id = BOS
    vocab_size = VOCAB
    all_special_ids = {BOS, EOS}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        out = bytearray()
        for t in ids:
            if t < 256:
                out.append(t)
            elif t in self.all_special_ids:
                if not skip_special_tokens:
                    out += b"<s>" if t == BOS else b"</s>"
            else:
                out += f"<{t}>".encode()
        return out.decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True
                            ) -> str:
        text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return text + ("<|assistant|>" if add_generation_prompt else "")


@dataclass
class FakeConfig:
    vocab_size: int = VOCAB
    max_position: int = 1024
    eos_token_ids: tuple[int, ...] = (EOS,)
    bos_token_id: int = BOS


@dataclass
class FakeKvStats:
    capacity: int
    used: int
    free: int
    peak: int
    bytes: int


class FakeKvCache:
    def __init__(self, n_cells: int, block_size: int):
        self.block_size = block_size
        self.tokens = np.full(n_cells, -1, dtype=np.int64)
        self.pos = np.full(n_cells, -1, dtype=np.int64)
        self.used = np.zeros(n_cells, dtype=bool)
        self.peak = 0

    def stats(self) -> FakeKvStats:
        used = int(self.used.sum())
        return FakeKvStats(len(self.used), used, len(self.used) - used, self.peak, 0)

    def release_blocks(self, block_ids: list[int]) -> None:
        for b in block_ids:
            self.used[b * self.block_size:(b + 1) * self.block_size] = False


class FakeModel:
    """script: when given, the greedy token at position p is script[(p + 1) % len(script)]
    (other tokens get small history-dependent logits); else every logit comes from a hash of
    the history and EOS is unlikely (eos_logit)."""

    def __init__(self, *, script: list[int] | None = None, max_position: int = 1024,
                 eos_logit: float = -30.0):
        self.config = FakeConfig(max_position=max_position)
        self.tokenizer = FakeTokenizer()
        self.script = script
        self.eos_logit = eos_logit
        self.fail_next: Exception | None = None  # raised by the next decode
        self.batches: list[DecodeBatch] = []
        self._sampled = np.empty(0, np.int64)  # ids of the last decode call (prev_row)
        self.weight_bytes = 0

    def kv_bytes_per_token(self) -> int:
        return 64

    def create_kv_cache(self, layout: str = "block", n_cells: int = 0, block_size: int = 16,
                        n_seq_max: int = 1) -> FakeKvCache:
        assert layout == "block" and n_cells % block_size == 0, "the fake serves BLOCK only"
        self.kv = FakeKvCache(n_cells, block_size)
        return self.kv

    def logits_for(self, history: np.ndarray) -> np.ndarray:
        h = int(np.bitwise_xor.reduce(history * (np.arange(len(history)) * 2654435761 + 1)))
        rng = np.random.default_rng([h & 0xFFFFFFFF, len(history)])
        if self.script is None:
            logits = rng.standard_normal(VOCAB).astype(np.float32) * 3
            logits[EOS] = self.eos_logit
        else:
            logits = rng.standard_normal(VOCAB).astype(np.float32) * 0.1
            logits[self.script[len(history) % len(self.script)]] = 10.0
        logits[BOS] = -30.0
        return logits

    def decode(self, kv: FakeKvCache, batch: DecodeBatch) -> DecodeResult:
        if self.fail_next is not None:
            e, self.fail_next = self.fail_next, None
            raise e
        self.batches.append(batch)
        bs, tables = kv.block_size, batch.block_tables
        tokens, pos, rows = batch.tokens, batch.positions, batch.seq_ids
        if batch.prev_row is not None:  # ids this model sampled in its previous call
            taken = batch.prev_row >= 0
            if (batch.prev_row[taken] >= len(self._sampled)).any():
                raise InvalidBatchError("prev_row names a row the previous call did not sample")
            tokens = np.where(taken, self._sampled[np.maximum(batch.prev_row, 0)], tokens) \
                if len(self._sampled) else tokens
        blocks = tables[rows, pos // bs]
        if (tokens < 0).any() or (tokens >= VOCAB).any():
            raise InvalidBatchError("token id out of range")
        if (blocks < 0).any() or (batch.slots != blocks.astype(np.int64) * bs + pos % bs).any():
            raise InvalidBatchError("slot does not match the block table")
        kv.tokens[batch.slots] = tokens
        kv.pos[batch.slots] = pos
        kv.used[batch.slots] = True
        kv.peak = max(kv.peak, int(kv.used.sum()))
        out_rows = np.flatnonzero(batch.output)
        logits = np.empty((len(out_rows), VOCAB), dtype=np.float32)
        for i, t in enumerate(out_rows):
            js = np.arange(pos[t] + 1)
            cells = tables[rows[t], js // bs].astype(np.int64) * bs + js % bs
            if (kv.pos[cells] != js).any():
                raise AssertionError(f"row {rows[t]} reads a cell that does not hold its position")
            logits[i] = self.logits_for(kv.tokens[cells])
        ids = resample(logits, batch.sampling) if batch.sampling is not None else None
        self._sampled = ids if ids is not None else np.empty(0, np.int64)
        return DecodeResult(ids, logits if batch.want_logits else None)

    def decode_async(self, kv: FakeKvCache, batch: DecodeBatch) -> CompletedDecode:
        return CompletedDecode(self.decode(kv, batch))


class CompletedDecode:
    """The fake computes a step when it is launched, as the CPU core does."""

    def __init__(self, result: DecodeResult):
        self.result = result

    def wait(self) -> DecodeResult:
        return self.result


def fake_engine(model: FakeModel | None = None, **overrides) -> LLMEngine:
    """An LLMEngine over a FakeModel with small limits (block size 4, 256 cached tokens)."""
    args = dict(kv_cache_tokens=256, block_size=4, max_num_seqs=8, max_num_batched_tokens=64)
    return LLMEngine(model=model or FakeModel(), **{**args, **overrides})


def run_all(engine: LLMEngine, max_steps: int = 10_000
            ) -> tuple[dict[str, GenerationOutput], list[StreamChunk]]:
    """Steps until no request is unfinished; returns the outputs by id and every chunk."""
    chunks: list[StreamChunk] = []
    for _ in range(max_steps):
        if not engine.has_unfinished_requests():
            break
        chunks += engine.step()
    else:
        raise AssertionError("the engine did not finish")
    chunks += engine.step()  # chunks of aborts issued after the last step
    ids = {c.request_id for c in chunks}
    return {i: out for i in ids if (out := engine.collect(i)) is not None}, chunks
