"""EngineClient: the one door the entrypoints use to reach an engine.

In process it forwards to an LLMEngine; it is the seam where an engine living in another
thread or process would plug in without the entrypoints changing.
"""

from __future__ import annotations

from ..models.tokenizer import Tokenizer
from .llm_engine import LLMEngine
from .outputs import EngineStats, GenerationOutput, StreamChunk
from .sampling_params import SamplingParams


class EngineClient:
    def __init__(self, engine: LLMEngine):
        self.engine = engine

    @property
    def tokenizer(self) -> Tokenizer:
        return self.engine.tokenizer

    def submit(self, prompt: str | list[int], params: SamplingParams,
               request_id: str | None = None) -> str:
        return self.engine.submit(prompt, params, request_id)

    def step(self) -> list[StreamChunk]:
        return self.engine.step()

    def collect(self, request_id: str) -> GenerationOutput | None:
        return self.engine.collect(request_id)

    def abort(self, request_id: str, reason: str = "aborted") -> bool:
        return self.engine.abort(request_id, reason)

    def has_unfinished_requests(self) -> bool:
        return self.engine.has_unfinished_requests()

    def stats(self) -> EngineStats:
        return self.engine.stats()
