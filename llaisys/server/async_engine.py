"""AsyncLLMEngine: the engine served to asyncio code.

One background loop thread owns the ``LLMEngine``: it alone calls submit / step / collect /
abort / stats. The asyncio side only sends commands (submit, cancel) through a thread-safe
queue and reads each request's output from that request's own stream, an asyncio queue
the loop thread fills through ``call_soon_threadsafe``. A stream is created before its
submit command is sent, so a consumer that starts reading late loses nothing, and the
terminal item (``RequestFinished``) is always queued after the request's last chunk.

Failure isolation: an exception raised by ``engine.step()`` fails the requests that were in
flight in that step (each is aborted in the engine so its KV blocks are freed, and its
stream ends with an error); the loop keeps serving requests submitted afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.llm_engine import EngineOverloadedError

if TYPE_CHECKING:
    from ..engine.llm_engine import LLMEngine
    from ..engine.outputs import EngineStats, GenerationOutput, StreamChunk
    from ..engine.sampling_params import SamplingParams
    from .metrics import ServerMetrics

logger = logging.getLogger("llaisys.server")


class EngineDeadError(RuntimeError):
    """The engine loop has stopped; no request can be served."""


@dataclass
class RequestFinished:
    """The terminal item of a request's stream."""

    request_id: str
    output: GenerationOutput | None  # the engine's final output, when it gave one
    finish_reasons: dict[int, str] = field(default_factory=dict)  # sample index -> reason
    error: str | None = None  # why the request failed, if it did
    # "invalid": refused at submit (bad input); "overloaded": the waiting queue is full;
    # "internal": failed inside the engine (a step raised, the loop stopped)
    error_kind: str | None = None


@dataclass
class _Live:
    """Loop-thread bookkeeping of one in-flight request."""

    stream: RequestStream
    n: int
    arrival: float
    finish_reasons: dict[int, str] = field(default_factory=dict)
    first_token: float | None = None
    last_token: float | None = None


class RequestStream:
    """Per-request output queue: filled by the loop thread, read on the event loop."""

    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.request_id = request_id
        self._loop = loop
        self._queue: asyncio.Queue[StreamChunk | RequestFinished] = asyncio.Queue()
        self.finished = False

    def _put(self, items: list[StreamChunk | RequestFinished]) -> None:
        for item in items:
            self._queue.put_nowait(item)

    def put_threadsafe(self, items: list[StreamChunk | RequestFinished]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._put, items)
        except RuntimeError:  # the event loop is closed: nobody is reading any more
            pass

    async def get(self) -> StreamChunk | RequestFinished:
        item = await self._queue.get()
        if isinstance(item, RequestFinished):
            self.finished = True
        return item


@dataclass
class _Submit:
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    stream: RequestStream
    arrival: float


@dataclass
class _Cancel:
    request_id: str


_STOP = object()
CANCELLED = "cancelled by the client"


class AsyncLLMEngine:
    """Serves one ``LLMEngine`` to many concurrent asyncio callers.

    Admission is bounded by the engine's own waiting-queue limit
    (``EngineArgs.max_waiting_requests``): a refused submit ends the stream with
    ``error_kind="overloaded"``.
    """

    def __init__(self, engine: LLMEngine, *, metrics: ServerMetrics | None = None) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.metrics = metrics
        self._commands: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._live: dict[str, _Live] = {}  # loop thread only
        self._admitted: set[str] = set()  # event loop only
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._dead: BaseException | None = None
        self._stats: EngineStats | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="llaisys-engine-loop", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._commands.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._dead is None

    def stats(self) -> EngineStats | None:
        """The engine's stats as of the loop's last iteration (None before it started)."""
        return self._stats

    # ---------------------------------------------------------------- API side
    def add_request(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str | None = None,
    ) -> RequestStream:
        """Admit a request and send its submit command; must run on the event loop."""
        if not self.is_alive:
            raise EngineDeadError(f"engine loop is not running: {self._dead!r}")
        rid = request_id or f"req-{next(self._ids)}"
        if rid in self._admitted:
            raise ValueError(f"request id {rid!r} is already in flight")
        stream = RequestStream(rid, asyncio.get_running_loop())
        self._admitted.add(rid)
        self._commands.put(_Submit(rid, prompt_token_ids, params, stream, time.monotonic()))
        return stream

    def abort(self, request_id: str) -> bool:
        """Ask the loop to abort a request (never blocks). False if it is not in flight."""
        if request_id not in self._admitted:
            return False
        self._admitted.discard(request_id)
        self._commands.put(_Cancel(request_id))
        return True

    def generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str | None = None,
    ) -> AsyncGenerator[StreamChunk | RequestFinished, None]:
        """Admit the request now; the iterator yields its chunks, then its
        ``RequestFinished``. Leaving early (the consumer stops or is cancelled, e.g. on
        client disconnect) aborts the request."""
        return self._iterate(self.add_request(prompt_token_ids, params, request_id))

    async def _iterate(self, stream: RequestStream
                       ) -> AsyncGenerator[StreamChunk | RequestFinished, None]:
        try:
            while True:
                item = await stream.get()
                yield item
                if isinstance(item, RequestFinished):
                    return
        finally:
            if not stream.finished:
                self.abort(stream.request_id)
            self._admitted.discard(stream.request_id)

    # ---------------------------------------------------------------- loop thread
    def _run(self) -> None:
        try:
            self._stats = self.engine.stats()
            while True:
                if not self._handle_commands(block=not self._live):
                    break
                if self._live:
                    self._step()
                self._stats = self.engine.stats()
        except BaseException as exc:  # a bug in the loop itself: fail everything, stop
            logger.exception("engine loop died")
            self._dead = exc
            self._fail(list(self._live), f"engine loop died: {exc!r}")
        finally:
            self._fail_pending_commands()

    def _handle_commands(self, *, block: bool) -> bool:
        """Apply queued commands; wait for one when idle. False on shutdown."""
        try:
            cmd = self._commands.get() if block else self._commands.get_nowait()
        except queue.Empty:
            return True
        while True:
            if cmd is _STOP:
                self._fail(list(self._live), "server shutting down")
                return False
            if isinstance(cmd, _Submit):
                self._submit(cmd)
            elif isinstance(cmd, _Cancel):
                self._cancel(cmd.request_id)
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return True

    def _submit(self, cmd: _Submit) -> None:
        try:
            self.engine.submit(cmd.prompt_token_ids, cmd.params, request_id=cmd.request_id)
        except Exception as exc:
            kind = "overloaded" if isinstance(exc, EngineOverloadedError) else "invalid"
            if self.metrics is not None:
                self.metrics.rejected.labels(reason=kind).inc()
            cmd.stream.put_threadsafe(
                [RequestFinished(cmd.request_id, None, error=str(exc), error_kind=kind)]
            )
            return
        self._live[cmd.request_id] = _Live(cmd.stream, cmd.params.n, cmd.arrival)
        if self.metrics is not None:
            self.metrics.prompt_tokens.inc(len(cmd.prompt_token_ids))

    def _cancel(self, request_id: str) -> None:
        live = self._live.get(request_id)
        if live is None:
            return  # finished already, or its submit command failed
        self.engine.abort(request_id, CANCELLED)
        self._finish(request_id, self.engine.collect(request_id))

    def _step(self) -> None:
        try:
            chunks = self.engine.step() if self.engine.has_unfinished_requests() else []
        except Exception as exc:
            logger.exception("engine step failed")
            self._fail(list(self._live), f"engine step failed: {exc!r}")
            return
        now = time.monotonic()
        batches: dict[str, list[StreamChunk]] = {}
        for chunk in chunks:
            live = self._live.get(chunk.request_id)
            if live is None:
                continue
            batches.setdefault(chunk.request_id, []).append(chunk)
            if chunk.finish_reason is not None:
                live.finish_reasons[chunk.index] = chunk.finish_reason
        for rid, items in batches.items():
            live = self._live[rid]
            n_tokens = sum(len(c.token_ids) for c in items)
            if n_tokens and self.metrics is not None:
                self.metrics.generation_tokens.inc(n_tokens)
                if live.first_token is None:
                    self.metrics.ttft.observe(now - live.arrival)
                elif live.last_token is not None:
                    self.metrics.itl.observe(now - live.last_token)
            if n_tokens:
                live.first_token = live.first_token or now
                live.last_token = now
            live.stream.put_threadsafe(list(items))
        has_unfinished = self.engine.has_unfinished_requests()
        for rid in list(self._live):
            output = self.engine.collect(rid)
            if output is not None:
                # An abort this loop did not ask for is a failure inside the engine (e.g. a
                # step raised): the request ends with the engine's reason as its error.
                failed = [o for o in output.outputs if o.finish_reason == "abort"]
                self._finish(rid, output, error=str(failed[0].stop_reason) if failed else None)
            elif not has_unfinished:
                self._finish(rid, None, error="the engine dropped the request")

    def _finish(
        self,
        request_id: str,
        output: GenerationOutput | None,
        *,
        error: str | None = None,
    ) -> None:
        live = self._live.pop(request_id)
        reasons = dict(live.finish_reasons)
        if output is not None:
            for out in output.outputs:
                if out.finish_reason is not None:
                    reasons.setdefault(out.index, out.finish_reason)
        for i in range(live.n):
            reasons.setdefault(i, "error" if error else "abort")
        kind = "internal" if error else None
        live.stream.put_threadsafe([RequestFinished(request_id, output, reasons, error, kind)])
        if self.metrics is not None:
            overall = "error" if error else _overall_reason(reasons)
            self.metrics.requests.labels(finish_reason=overall).inc()
            self.metrics.e2e.observe(time.monotonic() - live.arrival)

    def _fail(self, request_ids: list[str], message: str) -> None:
        for rid in request_ids:
            try:
                self.engine.abort(rid)
                self.engine.collect(rid)
            except Exception:
                logger.exception("abort of %s after a failure raised", rid)
            self._finish(rid, None, error=message)

    def _fail_pending_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(cmd, _Submit):
                cmd.stream.put_threadsafe([
                    RequestFinished(cmd.request_id, None, {}, "engine loop is not running",
                                    "internal")
                ])


def _overall_reason(reasons: dict[int, str]) -> str:
    values = set(reasons.values())
    for reason in ("error", "abort", "length"):
        if reason in values:
            return reason
    return "stop"
