"""A small stand-in for LLMEngine (the DESIGN.md interface) for server tests that need
exact control: scripted outputs, slow steps, steps that raise, a tiny waiting queue.

Tokens are bytes (ids 0-255) plus EOS (256) and BOS (257). A request's output text is
``script(prompt_text, params, index)``; the engine emits one byte per step per running
sample, then EOS (unless ignore_eos), honouring max_tokens, stop strings and abort.
KV blocks are counted like the real block manager (ceil(tokens / block_size) per sample).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llaisys.engine import (
    CompletionOutput,
    EngineConfig,
    EngineOverloadedError,
    EngineStats,
    GenerationOutput,
    RequestMetrics,
    SamplingParams,
    StreamChunk,
)

EOS, BOS = 256, 257
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


class FakeTokenizer:
    vocab_size = 258
    eos_token_ids = [EOS]
    bos_token_id = BOS
    all_special_ids = {EOS, BOS}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = list(text.encode("utf-8"))
        return [BOS, *ids] if add_special_tokens else ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        out = bytearray()
        for t in ids:
            if t < 256:
                out.append(t)
            elif not skip_special_tokens:
                out.extend(b"<eos>" if t == EOS else b"<bos>")
        return out.decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            add_generation_prompt: bool = True) -> str:
        text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return text + ("<|assistant|>" if add_generation_prompt else "")


def default_script(prompt: str, params: SamplingParams, index: int) -> str:
    """Deterministic for temperature 0 or a seed; a word salad that depends on the prompt."""
    tail = prompt.replace("<|assistant|>", "").rsplit("|>", 1)[-1].strip()[-12:]
    if params.temperature == 0:
        rng = random.Random(f"{prompt}")
    elif params.seed is not None:
        rng = random.Random(f"{prompt}/{params.seed}/{index}")
    else:
        rng = random.Random()
    words = " ".join(rng.choice(WORDS) for _ in range(6))
    return f"You said {tail!r}. {words}."


@dataclass
class _Sample:
    index: int
    target: str  # the scripted text
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # characters of text already sent
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    logprobs: list[dict[int, float]] = field(default_factory=list)


@dataclass
class _Request:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    samples: list[_Sample]
    arrival: float
    running: bool = False
    first_token: float | None = None


class FakeEngine:
    def __init__(self, *, script: Callable[[str, SamplingParams, int], str] = default_script,
                 step_delay: float = 0.0, max_num_seqs: int = 8, num_blocks: int = 256,
                 block_size: int = 4, max_model_len: int = 512,
                 max_waiting_requests: int | None = None) -> None:
        self.tokenizer = FakeTokenizer()
        self.config = EngineConfig(
            max_num_seqs=max_num_seqs, max_num_batched_tokens=2048, max_model_len=max_model_len,
            block_size=block_size, num_blocks=num_blocks, kv_layout="block",
            enable_prefix_caching=False, max_waiting_requests=max_waiting_requests)
        self.script = script
        self.step_delay = step_delay
        self.fail_next_steps = 0  # > 0: the next steps raise
        self.steps = 0
        self.owner: threading.Thread | None = None  # the one thread allowed to call in
        self._requests: dict[str, _Request] = {}
        self._finished: dict[str, GenerationOutput] = {}
        self._pending: list[StreamChunk] = []

    def _check_thread(self) -> None:
        me = threading.current_thread()
        if self.owner is None:
            self.owner = me
        assert self.owner is me, "LLMEngine called from two threads"

    # ---------------------------------------------------------------- interface
    def submit(self, prompt: str | list[int], params: SamplingParams,
               request_id: str | None = None) -> str:
        self._check_thread()
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("prompt is empty")
        limit = self.config.max_waiting_requests
        waiting = sum(1 for r in self._requests.values() if not r.running)
        if limit is not None and waiting >= limit:
            raise EngineOverloadedError(f"{limit} requests are already waiting")
        rid = request_id or f"fake-{len(self._requests) + len(self._finished)}"
        prompt_text = self.tokenizer.decode(ids)
        samples = [_Sample(i, self.script(prompt_text, params, i)) for i in range(params.n)]
        self._requests[rid] = _Request(rid, ids, params, samples, time.time())
        return rid

    def step(self) -> list[StreamChunk]:
        self._check_thread()
        self.steps += 1
        if self.step_delay:
            time.sleep(self.step_delay)
        chunks, self._pending = self._pending, []
        if self.fail_next_steps > 0:
            self.fail_next_steps -= 1
            raise RuntimeError("injected step failure")
        seats = self.config.max_num_seqs - sum(
            len(r.samples) for r in self._requests.values() if r.running)
        for req in self._requests.values():
            if not req.running and len(req.samples) <= seats:
                req.running = True
                seats -= len(req.samples)
        for req in [r for r in self._requests.values() if r.running]:
            for s in req.samples:
                if s.finish_reason is None:
                    chunks.append(self._advance(req, s))
            if all(s.finish_reason for s in req.samples):
                self._finalize(req)
        return chunks

    def collect(self, request_id: str) -> GenerationOutput | None:
        self._check_thread()
        return self._finished.pop(request_id, None)

    def abort(self, request_id: str, reason: str = "aborted") -> bool:
        self._check_thread()
        req = self._requests.get(request_id)
        if req is None:
            return False
        for s in req.samples:
            if s.finish_reason is None:
                s.finish_reason, s.stop_reason = "abort", reason
                self._pending.append(StreamChunk(request_id, s.index, [], "", None, "abort"))
        self._finalize(req)
        return True

    def has_unfinished_requests(self) -> bool:
        self._check_thread()
        return bool(self._requests)

    def memory_bytes(self) -> tuple[int, int]:
        return 0, 0  # static, read before the loop starts: no thread check

    def stats(self) -> EngineStats:
        used = sum(
            math.ceil((len(r.prompt_ids) + len(s.tokens)) / self.config.block_size)
            for r in self._requests.values() if r.running for s in r.samples
            if s.finish_reason is None)
        running = sum(1 for r in self._requests.values() if r.running)
        return EngineStats(running=running, waiting=len(self._requests) - running,
                           kv_blocks_used=used, kv_blocks_total=self.config.num_blocks,
                           prefix_hits=0, prefix_queries=0, preemptions=0, prompt_tokens=0,
                           generation_tokens=0, steps=self.steps)

    # ---------------------------------------------------------------- internals
    def _advance(self, req: _Request, s: _Sample) -> StreamChunk:
        p = req.params
        req.first_token = req.first_token or time.time()
        if len(s.text) < len(s.target):
            tok = s.target.encode("utf-8")[len(s.text.encode("utf-8"))]
        else:
            tok = EOS
        if p.ignore_eos and tok == EOS:
            tok = ord(".")
        s.tokens.append(tok)
        if p.logprobs is not None:
            top = {t: -1.0 - i for i, t in enumerate(range(97, 97 + p.logprobs))}
            s.logprobs.append({**top, tok: -0.5})
        if tok == EOS:
            s.finish_reason, s.stop_reason = "stop", EOS
        else:
            s.text = self.tokenizer.decode(s.tokens)
            for stop in p.stop or []:
                pos = s.text.find(stop)
                if pos >= 0:
                    s.text = s.text[:pos]
                    s.finish_reason, s.stop_reason = "stop", stop
                    break
            if s.finish_reason is None and len(s.tokens) >= p.max_tokens:
                s.finish_reason = "length"
        delta = s.text[s.emitted:]
        s.emitted = len(s.text)
        return StreamChunk(req.request_id, s.index, [tok], delta,
                           [s.logprobs[-1]] if p.logprobs is not None else None,
                           s.finish_reason)

    def _finalize(self, req: _Request) -> None:
        del self._requests[req.request_id]
        self._finished[req.request_id] = GenerationOutput(
            request_id=req.request_id, prompt=None, prompt_token_ids=req.prompt_ids,
            outputs=[CompletionOutput(s.index, s.text, s.tokens, s.finish_reason,
                                      s.stop_reason, s.logprobs) for s in req.samples],
            finished=True,
            metrics=RequestMetrics(req.arrival, req.first_token, time.time(), 0))
