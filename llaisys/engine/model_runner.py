"""ModelRunner: turns one scheduler decision into one DecodeBatch and returns sampled ids.

BLOCK layout: each token names its cache slot and each sequence its block table (the
BlockManager's). SLOT layout: each running sequence holds a core sequence id in
[0, max_num_seqs) and the core places its tokens. Batch arrays are built with numpy over
whole steps (no per-token Python loops); buffers are allocated once and reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..models.model import SAMPLING_DTYPE, DecodeBatch, KvCache, Model
from .sampler import (
    adjust_logits,
    needs_adjustment,
    needs_logits,
    resample,
    step_seeds,
    top_logprobs,
)
from .scheduler import SchedulerOutput
from .sequence import Sequence


@dataclass
class ModelOutput:
    seqs: list[Sequence]  # sequences that sampled a token this step, in batch order
    token_ids: list[int]
    logprobs: list[dict[int, float] | None]
    # wall-clock seconds of the runner's phases (prepare, forward, logits), for StepProfiler
    seconds: dict[str, float] = field(default_factory=dict)


class ModelRunner:
    def __init__(self, model: Model, kv: KvCache, *, layout: str, block_size: int,
                 max_num_seqs: int, max_num_batched_tokens: int, max_model_len: int):
        self.model = model
        self.kv = kv
        self.layout = layout
        self.block_size = block_size
        self._slot_ids: dict[int, int] = {}  # SLOT: Sequence.seq_id -> core sequence id
        self._free_slot_ids = list(range(max_num_seqs - 1, -1, -1))
        # Batch buffers, allocated once: a step writes its arrays into their leading parts.
        n = max(max_num_batched_tokens, max_num_seqs)  # tokens a step can carry
        self._arange = np.arange(n, dtype=np.int64)
        self._rows = self._arange.astype(np.int32)  # decode: token i is sequence i
        self._ones = np.ones(n, dtype=np.int8)  # decode: every token outputs
        self._tokens = np.empty(n, dtype=np.int64)
        self._positions = np.empty(n, dtype=np.int64)
        self._seq_ids = np.empty(n, dtype=np.int32)
        self._output = np.empty(n, dtype=np.int8)
        self._slots = np.empty(n, dtype=np.int64)
        self._tables = np.empty(max_num_seqs * -(-max_model_len // block_size), dtype=np.int32)
        self._sampling = np.empty(max_num_seqs, dtype=SAMPLING_DTYPE)
        self._seeds = np.empty((3, max_num_seqs), dtype=np.uint64)  # seed, index, step

    def run(self, sched: SchedulerOutput) -> ModelOutput:
        t0 = time.perf_counter()
        batch, out_seqs = self.prepare(sched)
        t1 = time.perf_counter()
        result = self.model.decode(self.kv, batch)
        t2 = time.perf_counter()
        if not out_seqs:
            return ModelOutput([], [], [], {"prepare": t1 - t0, "forward": t2 - t1})
        ids = np.asarray(result.token_ids, dtype=np.int64)
        logprobs: list[dict[int, float] | None] = [None] * len(out_seqs)
        if batch.want_logits:
            self._logit_controls(out_seqs, batch.sampling, result.logits, ids, logprobs)
        return ModelOutput(out_seqs, ids.tolist(), logprobs,
                           {"prepare": t1 - t0, "forward": t2 - t1,
                            "logits": time.perf_counter() - t2})

    @staticmethod
    def _logit_controls(seqs: list[Sequence], sampling: np.ndarray, logits: np.ndarray,
                        ids: np.ndarray, logprobs: list[dict[int, float] | None]) -> None:
        """In place: rows with penalties or an EOS mask are re-drawn from adjusted logits,
        rows that asked for logprobs get them from the raw logits."""
        adjust = [i for i, s in enumerate(seqs) if needs_adjustment(s)]
        if adjust:
            rows = logits[adjust]  # a copy: the raw logits stay for logprobs
            picked = [seqs[i] for i in adjust]
            adjust_logits(rows, picked, [sorted(s.request.stop_token_ids) for s in picked])
            ids[adjust] = resample(rows, sampling[adjust])
        want = [i for i, s in enumerate(seqs) if s.params.logprobs is not None]
        if want:
            ks = [seqs[i].params.logprobs for i in want]
            for i, entry in zip(want, top_logprobs(logits[want], ids[want], ks), strict=True):
                logprobs[i] = entry

    def prepare(self, sched: SchedulerOutput) -> tuple[DecodeBatch, list[Sequence]]:
        """The step's batch; its arrays are views of the runner's buffers, valid until the
        next prepare()."""
        seqs, k = sched.seqs, len(sched.seqs)
        if sched.kind == "decode":
            n = k
            tokens, positions = self._tokens[:k], self._positions[:k]
            tokens[:] = [s.token_ids[-1] for s in seqs]
            positions[:] = [s.num_computed_tokens for s in seqs]
            rows, output, out_seqs = self._rows[:k], self._ones[:k], list(seqs)
        else:
            lens = np.array(sched.num_tokens, dtype=np.int64)
            starts = np.fromiter((s.num_computed_tokens for s in seqs), np.int64, k)
            n = int(lens.sum())
            tokens, positions = self._tokens[:n], self._positions[:n]
            rows, output = self._seq_ids[:n], self._output[:n]
            first = np.cumsum(lens) - lens
            for s, a, o, m in zip(seqs, starts.tolist(), first.tolist(), sched.num_tokens,
                                  strict=True):  # one slice per sequence
                tokens[o:o + m] = s.token_ids[a:a + m]
            rows[:] = np.repeat(self._rows[:k], lens)
            np.subtract(self._arange[:n], np.repeat(first - starts, lens), out=positions)
            done = starts + lens == np.fromiter((s.num_tokens for s in seqs), np.int64, k)
            output.fill(0)
            output[(first + lens - 1)[done]] = 1
            out_seqs = [s for s, d in zip(seqs, done.tolist(), strict=True) if d]
        sampling = self._sampling_rows(out_seqs) if out_seqs else None
        want_logits = any(needs_logits(s) for s in out_seqs)
        if self.layout == "slot":
            ids = np.fromiter((self._slot_id(s) for s in seqs), np.int32, k)
            return DecodeBatch(tokens=tokens, positions=positions, seq_ids=ids[rows],
                               output=output, sampling=sampling,
                               want_logits=want_logits), out_seqs
        bs = self.block_size
        width = max(len(s.block_table) for s in seqs)
        tables = self._tables[:k * width].reshape(k, width)
        tables.fill(-1)
        for i, s in enumerate(seqs):
            tables[i, :len(s.block_table)] = s.block_table
        slots = self._slots[:n]
        np.multiply(tables[rows, positions // bs], bs, out=slots, dtype=np.int64)
        slots += positions % bs
        return DecodeBatch(
            tokens=tokens, positions=positions, seq_ids=rows, output=output, slots=slots,
            block_tables=tables, sampling=sampling, want_logits=want_logits), out_seqs

    def release(self, seq: Sequence, block_ids: list[int]) -> None:
        """seq's blocks were freed: BLOCK releases the ones no longer referenced, SLOT
        forgets seq's tokens and frees its sequence id."""
        if self.layout == "block":
            if block_ids:
                self.kv.release_blocks(block_ids)
        elif (slot_id := self._slot_ids.pop(seq.seq_id, None)) is not None:
            self.kv.seq_remove(slot_id)
            self._free_slot_ids.append(slot_id)

    def _slot_id(self, seq: Sequence) -> int:
        slot_id = self._slot_ids.get(seq.seq_id)
        if slot_id is None:
            slot_id = self._slot_ids[seq.seq_id] = self._free_slot_ids.pop()
        return slot_id

    def _sampling_rows(self, seqs: list[Sequence]) -> np.ndarray:
        m = len(seqs)
        sampling, seeds = self._sampling[:m], self._seeds[:, :m]
        sampling[:] = [(p.temperature, p.top_k, p.top_p, p.min_p, 0)
                       for p in (s.params for s in seqs)]
        seeds[:] = [[s.request.seed for s in seqs], [s.index for s in seqs],
                    [s.num_output_tokens for s in seqs]]
        sampling["seed"] = step_seeds(*seeds)
        return sampling
