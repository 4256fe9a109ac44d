"""OpenAI-compatible HTTP server (FastAPI) over an ``AsyncLLMEngine``.

Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
POST /v1/requests/{id}/cancel, GET /metrics, GET / (web chat, static files).
Every error is OpenAI's body ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.sampling_params import SamplingParams
from .async_engine import AsyncLLMEngine, EngineDeadError, RequestFinished
from .metrics import ServerMetrics
from .reasoning import ReasoningParser, prompt_opens_reasoning
from .schemas import ChatCompletionRequest, CompletionRequest, ErrorResponse, SamplingFields

logger = logging.getLogger("llaisys.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
UNAUTHENTICATED_PATHS = ("/health", "/", "/favicon.ico")  # plus /static/*: the page itself


@dataclass
class ServerConfig:
    """What the server enforces on top of the engine (resource limits, auth, naming)."""

    served_model_name: str
    max_model_len: int  # prompt + generated tokens of one sequence
    max_tokens: int | None = None  # cap on max_tokens of one request (None: the context)
    max_n: int = 8
    max_prompt_tokens: int | None = None  # None: max_model_len - 1
    max_body_bytes: int = 1 << 20
    api_key: str | None = None
    reasoning: bool = True  # split <think>...</think> into reasoning_content
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def for_engine(cls, engine: Any, served_model_name: str, **limits: Any) -> ServerConfig:
        """The context is what the engine can hold for one sequence: its max_model_len,
        and no more than the whole KV cache."""
        cfg = engine.config
        max_model_len = min(cfg.max_model_len, cfg.num_blocks * cfg.block_size)
        return cls(served_model_name=served_model_name, max_model_len=max_model_len, **limits)


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def _http_error(status: int, detail: str) -> APIError:
    kinds = {
        401: ("authentication_error", "invalid_api_key"),
        404: ("invalid_request_error", "not_found"),
        405: ("invalid_request_error", "method_not_allowed"),
        413: ("invalid_request_error", "request_too_large"),
    }
    type_, code = kinds.get(status, ("invalid_request_error" if status < 500 else "server_error",
                                     None))
    return APIError(status, detail, type_=type_, code=code)


# ------------------------------------------------------------------------ ASGI middleware
class LimitsAndAuthMiddleware:
    """Bearer-token auth (every path but /health and the static page) and a request body
    size limit (413), applied before the body is parsed."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        if self.api_key is not None and not (
            path in UNAUTHENTICATED_PATHS or path.startswith("/static/")
        ):
            if headers.get("authorization", "") != f"Bearer {self.api_key}":
                err = _http_error(401, "Invalid or missing API key (Authorization: Bearer ...)")
                await err.response()(scope, receive, send)
                return
        limit = self.max_body_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            err = _http_error(413, f"Request body is larger than {limit} bytes")
            await err.response()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, f"Request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


# ------------------------------------------------------------------------ helpers
async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


class ClientDisconnected(Exception):
    pass


async def _unless_disconnected(request: Request, awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable``; if the client disconnects first, cancel it (which aborts the
    engine requests it drives) and raise ClientDisconnected."""
    task = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    if task.cancelled():
        raise ClientDisconnected
    return task.result()


# Characters json.dumps leaves raw that line readers built on str.splitlines (requests' and
# httpx's iter_lines) take for line ends: escaped, so no client sees an event cut in two.
_LINE_BREAKS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


def _sse(obj: Any) -> str:
    data = json.dumps(obj, ensure_ascii=False, separators=(',', ':')).translate(_LINE_BREAKS)
    return f"data: {data}\n\n"


@dataclass
class _Choice:
    """Accumulated state of one choice (one sample of one prompt)."""

    index: int
    parser: ReasoningParser | None
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    num_tokens: int = 0
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class _Prompt:
    token_ids: list[int]
    opens_reasoning: bool = False


class _Merged:
    """The outputs of a response's engine requests (one per prompt), interleaved."""

    def __init__(self, engine: AsyncLLMEngine, request_ids: list[str],
                 prompts: list[_Prompt], params: SamplingParams) -> None:
        self._engine = engine
        self._request_ids = request_ids
        self._gens = [
            engine.generate(p.token_ids, params, rid)
            for rid, p in zip(request_ids, prompts, strict=True)
        ]

    async def aclose(self) -> None:
        """Close every request: aborts those unfinished, even if never iterated."""
        for gen in self._gens:
            await gen.aclose()
        for rid in self._request_ids:
            self._engine.abort(rid)

    async def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        if len(self._gens) == 1:
            async for item in self._gens[0]:
                yield 0, item
            return
        out: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue()

        async def pump(i: int, gen: AsyncIterator[Any]) -> None:
            async for item in gen:
                await out.put((i, item))
            await out.put(None)

        tasks = [asyncio.ensure_future(pump(i, g)) for i, g in enumerate(self._gens)]
        try:
            remaining = len(tasks)
            while remaining:
                item = await out.get()
                if item is None:
                    remaining -= 1
                else:
                    yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------------ the server
class OpenAIServing:
    """Request handling shared by chat and text completions."""

    def __init__(self, engine: AsyncLLMEngine, config: ServerConfig) -> None:
        self.engine = engine
        self.config = config
        self.tokenizer = engine.tokenizer
        self.vocab_size = engine.tokenizer.vocab_size
        self.groups: dict[str, list[str]] = {}  # response id -> engine request ids

    # -------------------------------------------------------------- validation
    def check_model(self, model: str | None) -> None:
        if model is not None and model != self.config.served_model_name:
            raise APIError(404, f"The model `{model}` does not exist.", param="model",
                           code="model_not_found")

    def sampling_params(self, req: SamplingFields, *, prompt_len: int, prompt_param: str,
                        requested_max: int | None, default_max: int | None,
                        logprobs: int | None) -> SamplingParams:
        cfg = self.config
        if req.n > cfg.max_n:
            raise APIError(400, f"n must be at most {cfg.max_n}, got {req.n}", param="n")
        max_prompt = min(cfg.max_prompt_tokens or cfg.max_model_len, cfg.max_model_len - 1)
        if prompt_len > max_prompt:
            raise APIError(400, f"The prompt has {prompt_len} tokens; this server accepts at "
                           f"most {max_prompt} (context length {cfg.max_model_len}).",
                           param=prompt_param, code="context_length_exceeded")
        room = cfg.max_model_len - prompt_len
        if requested_max is not None:
            if cfg.max_tokens is not None and requested_max > cfg.max_tokens:
                raise APIError(400, f"max_tokens must be at most {cfg.max_tokens}, got "
                               f"{requested_max}", param="max_tokens")
            if requested_max > room:
                raise APIError(400, f"This model's maximum context length is "
                               f"{cfg.max_model_len} tokens. However, you requested "
                               f"{prompt_len + requested_max} tokens ({prompt_len} in the "
                               f"prompt, {requested_max} in the completion).",
                               param="max_tokens", code="context_length_exceeded")
            max_tokens = requested_max
        else:
            max_tokens = min(x for x in (room, default_max, cfg.max_tokens) if x is not None)
        seed = None if req.seed is None else req.seed % (1 << 64)
        try:
            return SamplingParams(
                n=req.n,
                temperature=1.0 if req.temperature is None else req.temperature,
                top_p=1.0 if req.top_p is None else req.top_p,
                top_k=0 if req.top_k is None or req.top_k < 0 else req.top_k,
                min_p=0.0 if req.min_p is None else req.min_p,
                seed=seed,
                max_tokens=max_tokens,
                min_tokens=min(req.min_tokens, max_tokens),
                stop=req.stop_list(),
                stop_token_ids=req.stop_token_ids,
                ignore_eos=req.ignore_eos,
                presence_penalty=req.presence_penalty,
                frequency_penalty=req.frequency_penalty,
                repetition_penalty=req.repetition_penalty,
                logprobs=logprobs,
                skip_special_tokens=req.skip_special_tokens,
            )
        except ValueError as exc:
            param = str(exc).split(" ", 1)[0].removeprefix("SamplingParams.")
            raise APIError(400, str(exc), param=param) from exc

    def check_token_ids(self, ids: list[int], param: str) -> None:
        if not ids:
            raise APIError(400, "The prompt is empty.", param=param)
        bad = next((t for t in ids if t < 0 or t >= self.vocab_size), None)
        if bad is not None:
            raise APIError(400, f"Token id {bad} is out of range [0, {self.vocab_size}).",
                           param=param)

    # -------------------------------------------------------------- running
    def start(self, response_id: str, prompts: list[_Prompt],
              params: SamplingParams) -> _Merged:
        if len(prompts) == 1:
            request_ids = [response_id]
        else:
            request_ids = [f"{response_id}-{i}" for i in range(len(prompts))]
        try:
            merged = _Merged(self.engine, request_ids, prompts, params)
        except EngineDeadError as exc:
            raise APIError(503, str(exc), type_="server_error", code="engine_dead") from exc
        self.groups[response_id] = request_ids
        return merged

    def cancel(self, response_id: str) -> bool:
        request_ids = self.groups.get(response_id)
        if request_ids is None:
            return False
        for rid in request_ids:
            self.engine.abort(rid)
        return True

    def new_choices(self, prompts: list[_Prompt], n: int, reasoning: bool) -> list[_Choice]:
        return [
            _Choice(
                index=p * n + i,
                parser=ReasoningParser(in_reasoning=prompt.opens_reasoning) if reasoning else None,
            )
            for p, prompt in enumerate(prompts)
            for i in range(n)
        ]

    def token_logprobs(self, chunk: Any) -> list[dict[str, Any]]:
        """Per sampled token: {"token_id", "token", "logprob", "top": [(id, token, lp)]}."""
        result = []
        for tid, entry in zip(chunk.token_ids, chunk.logprobs or [], strict=False):
            top = sorted(entry.items(), key=lambda kv: -kv[1]) if entry else []
            result.append({
                "token_id": tid,
                "token": self._token_text(tid),
                "logprob": float(entry.get(tid, float("nan"))) if entry else float("nan"),
                "top": [(t, self._token_text(t), float(lp)) for t, lp in top],
            })
        return result

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False)


def _usage(prompt_tokens: int, completion_tokens: int,
           finished: list[RequestFinished]) -> dict[str, Any]:
    cached = sum(f.output.metrics.num_cached_tokens for f in finished if f.output is not None)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _chat_logprobs(entries: list[dict[str, Any]], top_n: int) -> dict[str, Any]:
    def item(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {
        "content": [
            {
                **item(e["token"], e["logprob"]),
                "top_logprobs": [item(tok, lp) for _, tok, lp in e["top"][:top_n]],
            }
            for e in entries
        ],
        "refusal": None,
    }


def _completion_logprobs(entries: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{tok: lp for _, tok, lp in e["top"]} for e in entries],
        "text_offset": offsets,
    }


def _error_event(message: str) -> str:
    return _sse(APIError(500, message, type_="server_error", code="internal_error").body())


def create_app(engine: AsyncLLMEngine, config: ServerConfig,
               metrics: ServerMetrics | None = None) -> FastAPI:
    """The FastAPI app; its lifespan starts and stops the engine loop."""
    metrics = metrics or engine.metrics or ServerMetrics()
    weight_bytes, kv_bytes = engine.engine.memory_bytes()
    metrics.weight_bytes.set(weight_bytes)
    metrics.kv_cache_bytes.set(kv_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.shutdown()

    app = FastAPI(title="llaisys", version="0.1.0", lifespan=lifespan)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": what}
        for code, what in [(400, "Invalid request"), (401, "Missing or wrong API key"),
                           (404, "Unknown model or request"), (413, "Body too large"),
                           (500, "Failure inside the engine"), (503, "Overloaded")]
    }

    def openapi() -> dict[str, Any]:
        """The schema as served: bad input is a 400 with OpenAI's body, never a 422."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for operations in schema["paths"].values():
                for op in operations.values():
                    op.get("responses", {}).pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    serving = OpenAIServing(engine, config)
    app.state.serving = serving

    # ---------------------------------------------------------------- error handlers
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        if first.get("type") == "json_invalid":
            message = f"Malformed JSON body: {first.get('ctx', {}).get('error', 'invalid')}"
            return APIError(400, message, code="invalid_json").response()
        param = ".".join(loc) or None
        message = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more error(s))"
        return APIError(400, message, param=param, code="invalid_value").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_exception(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _http_error(exc.status_code, str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return APIError(500, f"Internal error: {exc!r}", type_="server_error",
                        code="internal_error").response()

    # ---------------------------------------------------------------- small endpoints
    @app.get("/health")
    async def health() -> JSONResponse:
        if not engine.is_alive:
            return JSONResponse({"status": "engine dead"}, status_code=503)
        return JSONResponse({"status": "ok"})

    model_card = {
        "id": config.served_model_name,
        "object": "model",
        "created": config.created,
        "owned_by": "llaisys",
        "max_model_len": config.max_model_len,
    }

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [model_card]})

    @app.get("/v1/models/{model:path}", responses=errors)
    async def model(model: str) -> JSONResponse:
        serving.check_model(model)
        return JSONResponse(model_card)

    @app.get("/metrics")
    async def prometheus() -> Response:
        stats = engine.stats()
        if stats is not None:
            metrics.update_engine_stats(stats)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/requests/{request_id}/cancel", responses=errors)
    async def cancel(request_id: str) -> JSONResponse:
        if not serving.cancel(request_id):
            raise APIError(404, f"No request `{request_id}` is in flight.",
                           param="request_id", code="request_not_found")
        return JSONResponse({"id": request_id, "object": "request.cancel", "cancelled": True})

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ---------------------------------------------------------------- generation
    async def run(request: Request, response_id: str, merged: _Merged, stream: bool,
                  body: Callable[[], dict[str, Any]],
                  stream_body: Callable[[AsyncIterator[tuple[int, Any]]], AsyncIterator[str]],
                  consume: Callable[[AsyncIterator[tuple[int, Any]]], Awaitable[None]],
                  ) -> Response:
        it = aiter(merged)

        async def close() -> None:
            serving.groups.pop(response_id, None)
            await it.aclose()
            await merged.aclose()

        if not stream:
            try:
                await _unless_disconnected(request, consume(it))
            except ClientDisconnected:
                return Response(status_code=499)
            finally:
                await close()
            return JSONResponse(body())
        # Wait for the first output before answering, so a request that fails at once
        # gets an HTTP error status instead of a 200 with an error event.
        try:
            first = await _unless_disconnected(request, anext(it))
            if isinstance(first[1], RequestFinished):
                check_failed(first[1])
        except ClientDisconnected:
            await close()
            return Response(status_code=499)
        except BaseException:
            await close()
            raise

        async def rest() -> AsyncIterator[tuple[int, Any]]:
            yield first
            async for x in it:
                yield x

        async def sse() -> AsyncIterator[str]:
            try:
                async for event in stream_body(rest()):
                    yield event
            finally:
                await close()

        return StreamingResponse(sse(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Request-Id": response_id})

    def check_failed(finished: RequestFinished) -> None:
        """Before any byte is sent: a refused or failed request becomes an HTTP error."""
        if finished.error is None:
            return
        if finished.error_kind == "invalid":
            raise APIError(400, finished.error)
        if finished.error_kind == "overloaded":
            raise APIError(503, f"The server is overloaded ({finished.error}); retry later.",
                           type_="server_error", code="server_overloaded")
        raise APIError(500, finished.error, type_="server_error", code="internal_error")

    @app.post("/v1/chat/completions", responses=errors)
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
        serving.check_model(req.model)
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in req.messages
        ]
        try:
            prompt_text = serving.tokenizer.apply_chat_template(messages,
                                                                add_generation_prompt=True)
        except Exception as exc:
            raise APIError(400, f"The chat template rejected the messages: {exc}",
                           param="messages") from exc
        token_ids = serving.tokenizer.encode(prompt_text, add_special_tokens=False)
        serving.check_token_ids(token_ids, "messages")
        top_n = (req.top_logprobs or 0) if req.logprobs else 0
        params = serving.sampling_params(
            req, prompt_len=len(token_ids), prompt_param="messages",
            requested_max=req.max_completion_tokens or req.max_tokens, default_max=None,
            logprobs=top_n if req.logprobs else None)
        prompts = [_Prompt(token_ids, prompt_opens_reasoning(prompt_text))]
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model = config.served_model_name
        choices = serving.new_choices(prompts, req.n, config.reasoning)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        merged = serving.start(response_id, prompts, params)
        done: list[RequestFinished] = []

        def apply(item: Any, choice_deltas: Callable[[_Choice, str, str, list[Any]], None]
                  ) -> RequestFinished | None:
            _, out = item
            if isinstance(out, RequestFinished):
                done.append(out)
                for c in choices:
                    if c.finish_reason is None:
                        c.finish_reason = out.finish_reasons.get(c.index, "abort")
                return out
            c = choices[out.index]
            c.num_tokens += len(out.token_ids)
            entries = serving.token_logprobs(out) if req.logprobs else []
            reasoning, content = c.parser.feed(out.text) if c.parser else ("", out.text)
            if out.finish_reason is not None and c.parser:
                r2, c2 = c.parser.flush()
                reasoning, content = reasoning + r2, content + c2
            choice_deltas(c, reasoning, content, entries)
            if out.finish_reason is not None:
                c.finish_reason = out.finish_reason
            return None

        def chunk(choice_list: list[dict[str, Any]], usage: Any = None) -> str:
            obj: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk",
                                   "created": created, "model": model,
                                   "system_fingerprint": None, "choices": choice_list}
            if include_usage:
                obj["usage"] = usage
            return _sse(obj)

        async def stream_body(items: AsyncIterator[tuple[int, Any]]) -> AsyncIterator[str]:
            for c in choices:
                yield chunk([{"index": c.index, "delta": {"role": "assistant", "content": ""},
                              "logprobs": None, "finish_reason": None}])
            pending: list[str] = []

            def deltas(c: _Choice, reasoning: str, content: str, entries: list[Any]) -> None:
                delta: dict[str, Any] = {}
                if reasoning:
                    delta["reasoning_content"] = reasoning
                    delta["reasoning"] = reasoning
                if content:
                    delta["content"] = content
                if delta or entries:
                    pending.append(chunk([{
                        "index": c.index, "delta": delta,
                        "logprobs": _chat_logprobs(entries, top_n) if entries else None,
                        "finish_reason": None}]))

            async for item in items:
                was_open = [c.finish_reason is None for c in choices]
                finished = apply(item, deltas)
                for event in pending:
                    yield event
                pending.clear()
                if finished is not None and finished.error is not None:
                    yield _error_event(finished.error)
                for c, opened in zip(choices, was_open, strict=True):
                    if opened and c.finish_reason is not None:
                        yield chunk([{"index": c.index, "delta": {}, "logprobs": None,
                                      "finish_reason": c.finish_reason}])
                if finished is not None:
                    break
            if include_usage:
                yield chunk([], _usage(len(token_ids), sum(c.num_tokens for c in choices),
                                       done))
            yield "data: [DONE]\n\n"

        def collect_deltas(c: _Choice, reasoning: str, content: str, entries: list[Any]) -> None:
            c.reasoning.append(reasoning)
            c.text.append(content)
            c.logprobs.extend(entries)

        async def consume(items: AsyncIterator[tuple[int, Any]]) -> None:
            async for item in items:
                finished = apply(item, collect_deltas)
                if finished is not None:
                    check_failed(finished)
                    return None
            return None

        def body() -> dict[str, Any]:
            out_choices = []
            for c in choices:
                message: dict[str, Any] = {"role": "assistant", "content": "".join(c.text),
                                           "refusal": None}
                reasoning = "".join(c.reasoning)
                if reasoning:
                    message["reasoning_content"] = reasoning
                    message["reasoning"] = reasoning
                out_choices.append({
                    "index": c.index, "message": message,
                    "logprobs": _chat_logprobs(c.logprobs, top_n) if req.logprobs else None,
                    "finish_reason": c.finish_reason,
                })
            return {"id": response_id, "object": "chat.completion", "created": created,
                    "model": model, "system_fingerprint": None, "choices": out_choices,
                    "usage": _usage(len(token_ids), sum(c.num_tokens for c in choices), done)}

        return await run(request, response_id, merged, req.stream, body, stream_body, consume)

    @app.post("/v1/completions", responses=errors)
    async def completions(req: CompletionRequest, request: Request) -> Response:
        serving.check_model(req.model)
        raw = req.prompt
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], str)):
            texts = [raw] if isinstance(raw, str) else list(raw)
            prompt_ids = [serving.tokenizer.encode(t, add_special_tokens=True) for t in texts]
        elif isinstance(raw, list) and raw and isinstance(raw[0], list):
            prompt_ids = [list(p) for p in raw]
        else:
            prompt_ids = [list(raw)]  # one prompt of token ids (possibly empty)
        if not prompt_ids:
            raise APIError(400, "The prompt is empty.", param="prompt")
        for ids in prompt_ids:
            serving.check_token_ids(ids, "prompt")
        params = serving.sampling_params(
            req, prompt_len=max(len(ids) for ids in prompt_ids), prompt_param="prompt",
            requested_max=req.max_tokens,
            default_max=16, logprobs=req.logprobs)
        prompts = [_Prompt(ids) for ids in prompt_ids]
        response_id = f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model = config.served_model_name
        n = req.n
        choices = serving.new_choices(prompts, n, reasoning=False)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        prompt_tokens = sum(len(ids) for ids in prompt_ids)
        merged = serving.start(response_id, prompts, params)
        text_offsets = [0] * len(choices)
        done: list[RequestFinished] = []

        def chunk(choice_list: list[dict[str, Any]], usage: Any = None) -> str:
            obj: dict[str, Any] = {"id": response_id, "object": "text_completion",
                                   "created": created, "model": model,
                                   "system_fingerprint": None, "choices": choice_list}
            if include_usage:
                obj["usage"] = usage
            return _sse(obj)

        def apply(item: tuple[int, Any]) -> tuple[_Choice | None, str, list[Any]]:
            p, out = item
            if isinstance(out, RequestFinished):
                done.append(out)
                for c in choices[p * n:(p + 1) * n]:
                    if c.finish_reason is None:
                        c.finish_reason = out.finish_reasons.get(c.index - p * n, "abort")
                return None, "", []
            c = choices[p * n + out.index]
            c.num_tokens += len(out.token_ids)
            entries = serving.token_logprobs(out) if req.logprobs is not None else []
            if out.finish_reason is not None:
                c.finish_reason = out.finish_reason
            return c, out.text, entries

        def logprobs_of(c: _Choice, entries: list[Any]) -> dict[str, Any] | None:
            if req.logprobs is None:
                return None
            result = _completion_logprobs(entries, text_offsets[c.index])
            text_offsets[c.index] += sum(len(e["token"]) for e in entries)
            return result

        async def stream_body(items: AsyncIterator[tuple[int, Any]]) -> AsyncIterator[str]:
            remaining = len(prompts)
            async for item in items:
                was_open = [c.finish_reason is None for c in choices]
                c, text, entries = apply(item)
                if c is not None and (text or entries or c.finish_reason):
                    yield chunk([{"index": c.index, "text": text,
                                  "logprobs": logprobs_of(c, entries),
                                  "finish_reason": c.finish_reason}])
                finished = item[1] if isinstance(item[1], RequestFinished) else None
                if finished is None:
                    continue
                if finished.error is not None:
                    yield _error_event(finished.error)
                for c2, opened in zip(choices, was_open, strict=True):
                    if opened and c2.finish_reason is not None:
                        yield chunk([{"index": c2.index, "text": "", "logprobs": None,
                                      "finish_reason": c2.finish_reason}])
                remaining -= 1
                if not remaining:
                    break
            if include_usage:
                yield chunk([], _usage(prompt_tokens, sum(c.num_tokens for c in choices), done))
            yield "data: [DONE]\n\n"

        async def consume(items: AsyncIterator[tuple[int, Any]]) -> None:
            remaining = len(prompts)
            async for item in items:
                c, text, entries = apply(item)
                if c is not None:
                    c.text.append(text)
                    c.logprobs.extend(entries)
                if isinstance(item[1], RequestFinished):
                    check_failed(item[1])
                    remaining -= 1
                    if not remaining:
                        return None
            return None

        def body() -> dict[str, Any]:
            return {
                "id": response_id, "object": "text_completion", "created": created,
                "model": model, "system_fingerprint": None,
                "choices": [{"index": c.index, "text": "".join(c.text),
                             "logprobs": logprobs_of(c, c.logprobs),
                             "finish_reason": c.finish_reason} for c in choices],
                "usage": _usage(prompt_tokens, sum(c.num_tokens for c in choices), done),
            }

        return await run(request, response_id, merged, req.stream, body, stream_body, consume)

    app.add_middleware(LimitsAndAuthMiddleware, api_key=config.api_key,
                       max_body_bytes=config.max_body_bytes)
    return app


def run_server(engine: Any, config: ServerConfig, *, host: str = "127.0.0.1",
               port: int = 8000, log_level: str = "info") -> None:
    """Serve ``engine`` (an LLMEngine) until interrupted."""
    import uvicorn

    metrics = ServerMetrics()
    app = create_app(AsyncLLMEngine(engine, metrics=metrics), config, metrics)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
