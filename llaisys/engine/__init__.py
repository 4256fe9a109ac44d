"""The offline engine: request states, scheduler, block manager, executor, LLMEngine."""

from .config import EngineArgs, EngineConfig
from .engine_client import EngineClient
from .llm_engine import EngineOverloadedError, LLMEngine
from .outputs import CompletionOutput, EngineStats, GenerationOutput, RequestMetrics, StreamChunk
from .request_state import IllegalTransitionError, RequestState, RequestStatus
from .sampling_params import SamplingParams

__all__ = [
    "CompletionOutput",
    "EngineArgs",
    "EngineClient",
    "EngineConfig",
    "EngineOverloadedError",
    "EngineStats",
    "GenerationOutput",
    "IllegalTransitionError",
    "LLMEngine",
    "RequestMetrics",
    "RequestState",
    "RequestStatus",
    "SamplingParams",
    "StreamChunk",
]
