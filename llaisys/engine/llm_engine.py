"""LLMEngine: requests in, one scheduler decision and one core decode per step, chunks out.

step() follows the seed's flowchart: schedule; requests that can never fit are finished
aborted; otherwise the executor runs the step, sampled tokens are appended, and requests
that reached a finish reason release their blocks. An exception inside a step fails only
that step's requests.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid

import numpy as np

from ..models.model import Model
from .block_manager import BlockManager
from .config import EngineArgs, EngineConfig
from .detokenizer import IncrementalDetokenizer
from .executor import Executor
from .model_runner import LaunchedStep, ModelOutput, PreparedStep
from .outputs import CompletionOutput, EngineStats, GenerationOutput, RequestMetrics, StreamChunk
from .profiler import StepProfiler
from .sampling_params import SamplingParams
from .scheduler import RequestScheduler, SchedulerOutput
from .sequence import PENDING_TOKEN, Request, Sequence


class EngineOverloadedError(RuntimeError):
    """submit() found the waiting queue at max_waiting_requests."""


class LLMEngine:
    def __init__(self, args: EngineArgs | None = None, *, model: Model | None = None,
                 **overrides):
        args = dataclasses.replace(args or EngineArgs(), **overrides)
        if args.num_threads is not None:
            from ..runtime import set_num_threads

            set_num_threads(args.num_threads)
        if model is None:
            model = Model.load(args.model, dtype=args.dtype, device=args.device,
                               device_id=args.device_id)
        self.args = args
        self.model = model
        self.tokenizer = model.tokenizer
        self.model_config = model.config
        self.config = EngineConfig.resolve(args, max_position=model.config.max_position,
                                           kv_bytes_per_token=model.kv_bytes_per_token())
        self.executor = Executor(model, self.config)
        self.block_manager = BlockManager(
            self.config.num_blocks, self.config.block_size,
            enable_prefix_caching=self.config.enable_prefix_caching,
            on_release=self.executor.release)
        self.scheduler = RequestScheduler(
            self.block_manager, max_num_seqs=self.config.max_num_seqs,
            max_num_batched_tokens=self.config.max_num_batched_tokens,
            max_model_len=self.config.max_model_len, mixed_batches=self.config.mixed_batches)
        self._requests: dict[str, Request] = {}
        self._finished: dict[str, GenerationOutput] = {}
        self._pending: list[StreamChunk] = []  # from abort() between steps
        # Async scheduling: the last step launched and not finished yet, with its decision.
        self._in_flight: tuple[SchedulerOutput, LaunchedStep] | None = None
        self._rng = np.random.default_rng()
        self._eos = frozenset(model.tokenizer.eos_token_ids or model.config.eos_token_ids)
        self._prompt_tokens = 0
        self._generation_tokens = 0
        self._steps = 0
        self.profiler: StepProfiler | None = (
            StepProfiler() if os.environ.get("LLAISYS_PROFILE_STEPS", "0") not in ("", "0")
            else None)

    # ------------------------------------------------------------------ requests --

    def submit(self, prompt: str | list[int], params: SamplingParams | None = None,
               request_id: str | None = None) -> str:
        """Queues a prompt (text, or token ids); returns its request id."""
        params = params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be SamplingParams, got {type(params).__name__}")
        if isinstance(prompt, str):
            text, ids = prompt, self.tokenizer.encode(prompt)
        else:
            text, ids = None, self._check_ids(prompt)
        if not ids:
            raise ValueError("prompt is empty")
        request_id = request_id if request_id is not None else uuid.uuid4().hex
        if request_id in self._requests or request_id in self._finished:
            raise ValueError(f"request id {request_id!r} is already in use")
        limit = self.config.max_waiting_requests
        if limit is not None and len(self.scheduler.waiting) >= limit:
            raise EngineOverloadedError(f"{limit} requests are already waiting")
        seed = params.seed if params.seed is not None else int(self._rng.integers(1 << 63))
        stops = frozenset(params.stop_token_ids or ()) | (
            frozenset() if params.ignore_eos else self._eos)
        req = Request(request_id, text, ids, params, seed, stops)
        req.seqs = [Sequence(req, i, IncrementalDetokenizer(
            self.tokenizer, ids, skip_special_tokens=params.skip_special_tokens,
            stop=params.stop), self.config.max_model_len) for i in range(params.n)]
        req.unforked = req.seqs[1:]
        self._requests[request_id] = req
        self.scheduler.add(req.seqs[0])
        return request_id

    def abort(self, request_id: str, reason: str = "aborted") -> bool:
        """Finishes an unfinished request as "abort"; False if there is none by that id."""
        req = self._requests.get(request_id)
        if req is None:
            return False
        self._abort(req, reason, self._pending)
        return True

    def collect(self, request_id: str) -> GenerationOutput | None:
        """The final output once the request finished (then forgotten), else None."""
        return self._finished.pop(request_id, None)

    def has_unfinished_requests(self) -> bool:
        return bool(self._requests)

    def memory_bytes(self) -> tuple[int, int]:
        """(weights, KV cache): bytes the core holds for this engine's model and cache."""
        return self.model.weight_bytes, self.executor.kv_cache_bytes()

    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(
            running=len(self.scheduler.running), waiting=len(self.scheduler.waiting),
            kv_blocks_used=bm.num_used_blocks, kv_blocks_total=bm.num_blocks,
            prefix_hits=bm.prefix_hits, prefix_queries=bm.prefix_queries,
            preemptions=self.scheduler.num_preemptions, prompt_tokens=self._prompt_tokens,
            generation_tokens=self._generation_tokens, steps=self._steps)

    # ---------------------------------------------------------------------- step --

    def step(self) -> list[StreamChunk]:
        """One scheduler decision and one core decode; the chunks of the step that finished.

        Synchronous: schedule, launch, wait, process. With async scheduling a step is in
        flight between calls: while the device computes it, the next decision is scheduled,
        prepared and queued (the core takes the ids this step samples on the device), and
        then this step's tokens are processed while the device computes the next. A step
        whose ids may be re-drawn on the host (it returns logits) is followed the
        synchronous way.
        """
        start = time.perf_counter()
        chunks, self._pending = self._pending, []
        if self._in_flight is None:
            sched = self._schedule(chunks)
            if sched is None or not self._launch(sched, self._prepare(sched, chunks), chunks):
                return chunks
        sched, launched = self._in_flight
        nxt = prepared = None
        if self.config.async_scheduling and not launched.host_ids:
            nxt = self._schedule(chunks)
            prepared = self._prepare(nxt, chunks) if nxt is not None else None
        self._in_flight = None
        if prepared is not None:
            self._launch(nxt, prepared, chunks)
        out = self._finish(sched, launched, chunks)
        if out is not None:
            t_process = time.perf_counter()
            self._process(out, chunks)
            if self.profiler is not None:
                ran = self._in_flight[1] if self._in_flight is not None else launched
                self._profile(sched, out, ran.seconds, start, t_process)
        return chunks

    def _schedule(self, chunks: list[StreamChunk]) -> SchedulerOutput | None:
        """The next decision; None when there is nothing to run."""
        sched = self.scheduler.schedule()
        for seq in sched.aborted:
            chunks.append(self._chunk(seq, [], "", None))
            self._abort(seq.request, str(seq.state.reason), chunks)
        return None if sched.kind == "idle" else sched

    def _prepare(self, sched: SchedulerOutput, chunks: list[StreamChunk]
                 ) -> PreparedStep | None:
        try:
            return self.executor.prepare(sched)
        except Exception as e:  # noqa: BLE001 - the step's requests fail, the engine lives
            self._fail(sched, e, chunks)
            return None

    def _launch(self, sched: SchedulerOutput, prepared: PreparedStep | None,
                chunks: list[StreamChunk]) -> bool:
        """Queues the step; False when it could not run (its requests failed)."""
        if prepared is None:
            return False
        try:
            launched = self.executor.launch(prepared)
        except Exception as e:  # noqa: BLE001
            self._fail(sched, e, chunks)
            return False
        self._in_flight = (sched, launched)
        self._steps += 1
        self.scheduler.advance(sched)
        if sched.kind == "prefill":
            self._prompt_tokens += sched.prompt_tokens
            self._fork(sched)
        return True

    def _finish(self, sched: SchedulerOutput, launched: LaunchedStep,
                chunks: list[StreamChunk]) -> ModelOutput | None:
        """The launched step's sampled tokens; None when it failed (its requests too)."""
        try:
            out = self.executor.finish(launched, sched)
        except Exception as e:  # noqa: BLE001
            self._fail(sched, e, chunks)
            return None
        # Its K/V are in the cache. Blocks a step queued after it fills may be published
        # too: only steps queued later still read them.
        self.block_manager.register_computed(sched.seqs)
        return out

    def _fail(self, sched: SchedulerOutput, e: Exception, chunks: list[StreamChunk]) -> None:
        for req in {id(s.request): s.request for s in sched.seqs}.values():
            if not req.finished:
                self._abort(req, f"step failed: {type(e).__name__}: {e}", chunks)

    def _profile(self, sched: SchedulerOutput, out: ModelOutput, launch: dict[str, float],
                 start: float, t_process: float) -> None:
        """Phases of this call: `launch` holds the prepare and launch times of the step it
        queued; forward is that launch plus the wait for the step it finished."""
        end = time.perf_counter()
        seconds = {"prepare": launch["prepare"],
                   "forward": launch["launch"] + out.seconds["forward"],
                   "logits": out.seconds.get("logits", 0.0), "output": end - t_process}
        seconds["schedule"] = max(0.0, end - start - sum(seconds.values()))
        self.profiler.record(sched.kind, len(sched.seqs), start, seconds)
        if not self._requests:  # the driver may now wait for work: not engine overhead
            self.profiler.idle()

    def _fork(self, sched: SchedulerOutput) -> None:
        """Samples 1..n-1 share sample 0's prompt blocks once they are computed (BLOCK; in
        SLOT layout they compute their own prompt)."""
        for seq in sched.seqs:
            req = seq.request
            if req.unforked and seq.index == 0 and seq.num_computed_tokens >= len(
                    req.prompt_token_ids):
                shared = 0 if self.config.kv_layout == "slot" else (
                    (len(req.prompt_token_ids) - 1) // self.block_manager.block_size)
                for child in reversed(req.unforked):
                    self.block_manager.fork(seq, child, shared)
                    self.scheduler.add(child, front=True)
                req.unforked = []

    def _process(self, out: ModelOutput, chunks: list[StreamChunk]) -> None:
        # Runs once per sampled token: locals instead of Sequence properties, and a finish
        # reason looked up only when the branch taken finished the (running) sequence.
        now = time.time()
        max_len = self.config.max_model_len
        self._generation_tokens += len(out.seqs)
        for seq, tok, lp in zip(out.seqs, out.token_ids, out.logprobs, strict=True):
            req, token_ids = seq.request, seq.token_ids
            p = req.params
            # tok is the last token but for the next step's PENDING_TOKEN (async scheduling)
            num_tokens = len(token_ids) - (token_ids[-1] == PENDING_TOKEN)
            num_output = num_tokens - seq.num_prompt_tokens
            if req.first_token_time is None:
                req.first_token_time = now
            if lp is not None:
                seq.logprobs.append(lp)
            finished = True
            if tok in req.stop_token_ids:
                text = seq.detokenizer.flush()
                seq.state.finish_stopped(tok)
            else:
                text, stop = seq.detokenizer.add(tok, check_stop=num_output > p.min_tokens)
                if stop is not None:
                    seq.state.finish_stopped(stop)
                elif num_output >= p.max_tokens or num_tokens >= max_len:
                    text += seq.detokenizer.flush()
                    seq.state.finish_length()
                else:
                    finished = False
            chunks.append(self._chunk(seq, [tok], text, lp))
            if finished:
                self.scheduler.finish(seq)
                if req.finished:
                    self._finalize(req)

    # ------------------------------------------------------------------- helpers --

    def _abort(self, req: Request, reason: str, chunks: list[StreamChunk]) -> None:
        for seq in req.seqs:
            if not seq.finished:
                seq.state.finish_aborted(reason)
                chunks.append(self._chunk(seq, [], "", None))
            self.scheduler.finish(seq)
        req.unforked = []
        self._finalize(req)

    def _finalize(self, req: Request) -> None:
        req.finish_time = time.time()
        del self._requests[req.request_id]
        self._finished[req.request_id] = GenerationOutput(
            request_id=req.request_id, prompt=req.prompt,
            prompt_token_ids=list(req.prompt_token_ids),
            outputs=[CompletionOutput(
                index=s.index, text=s.detokenizer.text, token_ids=s.output_token_ids,
                finish_reason=s.state.status.finish_reason, stop_reason=s.state.reason,
                logprobs=s.logprobs) for s in req.seqs],
            finished=True,
            metrics=RequestMetrics(req.arrival_time, req.first_token_time, req.finish_time,
                                   req.seqs[0].num_cached_tokens))

    @staticmethod
    def _chunk(seq: Sequence, token_ids: list[int], text: str,
               lp: dict[int, float] | None) -> StreamChunk:
        return StreamChunk(seq.request.request_id, seq.index, token_ids, text,
                           None if lp is None else [lp], seq.state.status.finish_reason)

    def _check_ids(self, ids: list[int]) -> list[int]:
        vocab = self.model_config.vocab_size
        if not isinstance(ids, list | tuple) or not all(
                isinstance(t, int | np.integer) and not isinstance(t, bool) for t in ids):
            raise TypeError("prompt must be a str or a list of token ids (int)")
        bad = [t for t in ids if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt token id {bad[0]} is outside the vocabulary [0, {vocab})")
        return [int(t) for t in ids]

