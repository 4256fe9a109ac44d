"""What the engine hands back: per-step stream chunks and final generation outputs.

logprobs, where asked for, are one dict per generated token: {token id: log-probability}
holding the top `SamplingParams.logprobs` tokens and the sampled token (log-softmax of the
model's raw logits).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)  # one per sampled token: slots make it about twice as cheap to build
class StreamChunk:
    """What one step adds to one sample of one request."""

    request_id: str
    index: int
    token_ids: list[int]
    text: str  # text delta; a stop string, and any tail that may begin one, is withheld
    logprobs: list[dict[int, float]] | None
    finish_reason: str | None  # "stop" | "length" | "abort"


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: str | int | None  # the stop string or stop token id; the abort message
    logprobs: list[dict[int, float]] | None = None


@dataclass
class RequestMetrics:
    arrival_time: float
    first_token_time: float | None
    finish_time: float | None
    num_cached_tokens: int  # prompt tokens served from the prefix cache


@dataclass
class GenerationOutput:
    """The final result of a request, one CompletionOutput per sample (index order)."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    metrics: RequestMetrics


@dataclass
class EngineStats:
    running: int
    waiting: int
    kv_blocks_used: int
    kv_blocks_total: int
    prefix_hits: int  # blocks served from the prefix cache
    prefix_queries: int  # full prompt blocks looked up
    preemptions: int
    prompt_tokens: int  # tokens computed in prefill steps, since start
    generation_tokens: int  # tokens sampled, since start
    steps: int
