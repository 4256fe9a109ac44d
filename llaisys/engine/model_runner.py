"""ModelRunner: turns one scheduler decision into one DecodeBatch and returns sampled ids.

Each running sequence holds a row in [0, max_num_seqs) from its first step until its blocks
are freed (vLLM's persistent batch): the row keeps what does not change from step to step
(its block table, grown in place; its sampling params and seed base), so a decode step of
256 sequences copies a few values per sequence instead of rebuilding them. BLOCK layout:
each token names its cache slot and the row indexes the block tables. SLOT layout: the row
is the core's sequence id and the core places the tokens. Batch arrays are built with numpy
over whole steps (no per-token Python loops); buffers are allocated once and reused.

A step is prepared, launched and finished in three calls, so that with async scheduling
the engine prepares and queues step N + 1 while the device computes step N: launch()
returns once the step is queued and marks each sampling sequence with a PENDING_TOKEN;
the next launch() has the core take a still pending token from step N's samples on the
device; finish() waits for one step and puts its sampled ids in place.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from ..models.model import SAMPLING_DTYPE, DecodeBatch, KvCache, Model, PendingDecode
from .sampler import (
    adjust_logits,
    always_needs_logits,
    needs_adjustment,
    resample,
    seed_bases,
    seeds_from_bases,
    stop_mask_until,
    top_logprobs,
)
from .scheduler import SchedulerOutput
from .sequence import PENDING_TOKEN, Sequence


@dataclass
class PreparedStep:
    batch: DecodeBatch
    out_seqs: list[Sequence]  # sequences that sample a token, in output-row order
    last_rows: np.ndarray | None  # batch rows of their last tokens; None: all rows (decode)
    seconds: float  # prepare()'s wall time


@dataclass
class LaunchedStep:
    out_seqs: list[Sequence]
    pending: PendingDecode
    sampling: np.ndarray | None  # the output rows' params, kept when logits come back
    host_ids: bool  # logits come back: finish() may re-draw ids, the next step reads them then
    seconds: dict[str, float]


@dataclass
class ModelOutput:
    seqs: list[Sequence]  # sequences that sampled a token this step (and still run)
    token_ids: list[int]
    logprobs: list[dict[int, float] | None]
    # wall-clock seconds of the runner's phases (prepare, launch, forward: the wait, logits)
    seconds: dict[str, float] = field(default_factory=dict)



class ModelRunner:
    def __init__(self, model: Model, kv: KvCache, *, layout: str, block_size: int,
                 max_num_seqs: int, max_num_batched_tokens: int, max_model_len: int):
        self.model = model
        self.kv = kv
        self.layout = layout
        self.block_size = block_size
        self._free_rows = list(range(max_num_seqs))  # a heap: rows stay packed at the front
        # Batch buffers, allocated once: a step writes its arrays into their leading parts.
        n = max(max_num_batched_tokens, max_num_seqs)  # tokens a step can carry
        self._arange = np.arange(n, dtype=np.int64)
        self._ones = np.ones(n, dtype=np.int8)  # decode: every token outputs
        self._tokens = np.empty(n, dtype=np.int64)
        self._prev_row = np.empty(n, dtype=np.int32)
        self._positions = np.empty(n, dtype=np.int64)
        self._seq_ids = np.empty(n, dtype=np.int32)
        self._output = np.empty(n, dtype=np.int8)
        self._slots = np.empty(n, dtype=np.int64)
        self._sampling = np.empty(max_num_seqs, dtype=SAMPLING_DTYPE)
        # Per row, kept while its sequence runs.
        self._tables = np.full((max_num_seqs, -(-max_model_len // block_size)), -1, np.int32)
        self._table_len = [0] * max_num_seqs  # leading entries of _tables written
        self._row_sampling = np.zeros(max_num_seqs, dtype=SAMPLING_DTYPE)  # seed: 0
        self._seed_base = np.zeros(max_num_seqs, dtype=np.uint64)
        self._prompt_len = np.zeros(max_num_seqs, dtype=np.int64)
        self._always_logits = np.zeros(max_num_seqs, dtype=bool)  # penalties or logprobs
        self._mask_stops_until = np.zeros(max_num_seqs, dtype=np.uint64)  # min_tokens with stops

    def launch(self, step: PreparedStep) -> LaunchedStep:
        """Queues the step on the device. The last token of each output row is read only
        now: the step before may have sampled it, and while that step is in flight (its
        PENDING_TOKEN still there) the core takes it from that step's samples on the device
        (prev_row). Each output sequence gets a PENDING_TOKEN for the token this step samples."""
        t0 = time.perf_counter()
        batch, out_seqs = step.batch, step.out_seqs
        last = [s.token_ids[-1] for s in out_seqs]
        rows = slice(None) if step.last_rows is None else step.last_rows
        batch.prev_row = None
        if PENDING_TOKEN in last:
            batch.prev_row = prev_row = self._prev_row[:len(batch.tokens)]
            prev_row.fill(-1)
            prev_row[rows] = [s.sampled_row if t == PENDING_TOKEN else -1
                              for s, t in zip(out_seqs, last, strict=True)]
            last = [max(t, 0) for t in last]  # ignored where taken; a valid id for the checks
        if out_seqs:
            batch.tokens[rows] = last
        pending = self.model.decode_async(self.kv, batch)
        for i, s in enumerate(out_seqs):
            s.token_ids.append(PENDING_TOKEN)
            s.sampled_row = i
        # The runner's sampling buffer is the next prepare()'s: keep what the logit controls read.
        sampling = batch.sampling.copy() if batch.want_logits else None
        return LaunchedStep(out_seqs, pending, sampling, batch.want_logits,
                            {"prepare": step.seconds, "launch": time.perf_counter() - t0})

    def wait(self, step: LaunchedStep) -> None:
        """Waits for the step's outputs (not for a step launched after it)."""
        t0 = time.perf_counter()
        step.pending.wait()
        step.seconds["forward"] = time.perf_counter() - t0

    def finish(self, step: LaunchedStep) -> ModelOutput:
        """After wait(): the step's sampled ids in place of the sequences' PENDING_TOKENs
        (the last but one where the next step's follows). A sequence that finished in the
        meantime (its PENDING_TOKENs dropped) is left out: its token is wasted."""
        result = step.pending.wait()  # complete: returns at once
        t1 = time.perf_counter()
        seconds = dict(step.seconds)
        if not step.out_seqs:
            return ModelOutput([], [], [], seconds)
        seqs: list[Sequence] = []
        tokens: list[int] = []
        if result.logits is None:
            for s, t in zip(step.out_seqs, result.token_ids.tolist(), strict=True):
                token_ids = s.token_ids
                if token_ids[-1] == PENDING_TOKEN:
                    if len(token_ids) > 1 and token_ids[-2] == PENDING_TOKEN:
                        token_ids[-2] = t
                    else:
                        token_ids[-1] = t
                    seqs.append(s)
                    tokens.append(t)
            logprobs: list[dict[int, float] | None] = [None] * len(seqs)
        else:
            # No step is launched after one that returns logits (its ids may change here):
            # the logit controls see each sequence without the token being sampled.
            live = [i for i, s in enumerate(step.out_seqs) if s.token_ids[-1] == PENDING_TOKEN]
            seqs = [step.out_seqs[i] for i in live]
            for s in seqs:
                s.token_ids.pop()
            ids = np.asarray(result.token_ids, dtype=np.int64)[live]
            logprobs = [None] * len(seqs)
            self._logit_controls(seqs, step.sampling[live], result.logits[live], ids, logprobs)
            tokens = ids.tolist()
            for s, t in zip(seqs, tokens, strict=True):
                s.token_ids.append(t)
        seconds["logits"] = time.perf_counter() - t1
        return ModelOutput(seqs, tokens, logprobs, seconds)

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

    def prepare(self, sched: SchedulerOutput) -> PreparedStep:
        """The step's batch but for the last token of its output rows (launch() writes it);
        its arrays are views of the runner's buffers, valid until the next prepare()."""
        t0 = time.perf_counter()
        seqs, k = sched.seqs, len(sched.seqs)
        seq_rows = [s.batch_row if s.batch_row is not None else self._take_row(s) for s in seqs]
        if sched.kind == "decode":
            n = k
            tokens, positions = self._tokens[:k], self._positions[:k]
            positions[:] = [s.num_computed_tokens for s in seqs]
            last_rows = None  # every row: launch() writes them all
            rows, output, out_seqs = self._seq_ids[:k], self._ones[:k], list(seqs)
            rows[:] = seq_rows
            out_rows, out_positions = rows, positions
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
            rows[:] = np.repeat(np.array(seq_rows, dtype=np.int32), lens)
            np.subtract(self._arange[:n], np.repeat(first - starts, lens), out=positions)
            done = starts + lens == np.fromiter((s.num_tokens for s in seqs), np.int64, k)
            output.fill(0)
            output[(first + lens - 1)[done]] = 1
            out_seqs = [s for s, d in zip(seqs, done.tolist(), strict=True) if d]
            out_rows = np.array([r for r, d in zip(seq_rows, done.tolist(), strict=True) if d],
                                dtype=np.int32)
            last_rows = (first + lens - 1)[done]
            out_positions = positions[last_rows]
        sampling, want_logits = None, False
        if out_seqs:
            sampling, want_logits = self._sampling_rows(out_rows, out_positions)
        if self.layout == "slot":
            batch = DecodeBatch(tokens=tokens, positions=positions, seq_ids=rows, output=output,
                                sampling=sampling, want_logits=want_logits)
            return PreparedStep(batch, out_seqs, last_rows, time.perf_counter() - t0)
        width = self._sync_tables(seqs, seq_rows)
        bs = self.block_size
        slots = self._slots[:n]
        np.multiply(self._tables[rows, positions // bs], bs, out=slots, dtype=np.int64)
        slots += positions % bs
        # Only the columns the batch's longest table uses (Model.decode copies the view into
        # a contiguous array): max_model_len may be far longer than any running sequence.
        batch = DecodeBatch(
            tokens=tokens, positions=positions, seq_ids=rows, output=output, slots=slots,
            block_tables=self._tables[:max(seq_rows) + 1, :width], sampling=sampling,
            want_logits=want_logits)
        return PreparedStep(batch, out_seqs, last_rows, time.perf_counter() - t0)

    def release(self, seq: Sequence, block_ids: list[int]) -> None:
        """seq's blocks were freed: BLOCK releases the ones no longer referenced, SLOT
        forgets seq's tokens; the sequence gives its row back."""
        if self.layout == "block" and block_ids:
            self.kv.release_blocks(block_ids)
        row, seq.batch_row = seq.batch_row, None
        if row is None:
            return
        if self.layout == "slot":
            self.kv.seq_remove(row)
        self._tables[row, :self._table_len[row]] = -1
        self._table_len[row] = 0
        heapq.heappush(self._free_rows, row)

    def _take_row(self, seq: Sequence) -> int:
        """A row for seq, filled with what stays fixed while it runs."""
        row = seq.batch_row = heapq.heappop(self._free_rows)
        p = seq.params
        self._row_sampling[row] = (p.temperature, p.top_k, p.top_p, p.min_p, 0)
        self._seed_base[row] = seed_bases(np.array([seq.request.seed], np.uint64),
                                          np.array([seq.index], np.uint64))[0]
        self._prompt_len[row] = seq.num_prompt_tokens
        self._always_logits[row] = always_needs_logits(seq)
        self._mask_stops_until[row] = stop_mask_until(seq)
        return row

    def _sync_tables(self, seqs: list[Sequence], seq_rows: list[int]) -> int:
        """Appends to each row's table the blocks its sequence gained since the last step;
        returns the longest table's length."""
        written = self._table_len
        for s, r in zip(seqs, seq_rows, strict=True):
            table = s.block_table
            if len(table) != written[r]:  # tables only grow while a sequence keeps its row
                self._tables[r, written[r]:len(table)] = table[written[r]:]
                written[r] = len(table)
        return max(1, max(map(written.__getitem__, seq_rows), default=1))

    def _sampling_rows(self, rows: np.ndarray, positions: np.ndarray
                       ) -> tuple[np.ndarray, bool]:
        """The sampling params of the output rows (their last tokens at `positions`), and
        whether any of them needs logits."""
        sampling = self._sampling[:len(rows)]
        np.take(self._row_sampling, rows, out=sampling)
        # The token sampled after position p is output token p + 1 - prompt length (from
        # arrays: no per-sequence Python call).
        steps = (positions + 1 - self._prompt_len[rows]).astype(np.uint64)
        sampling["seed"] = seeds_from_bases(self._seed_base[rows], steps)
        want_logits = bool(self._always_logits[rows].any()
                           or (steps < self._mask_stops_until[rows]).any())
        return sampling, want_logits
