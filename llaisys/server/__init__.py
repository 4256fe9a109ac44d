"""Online serving: AsyncLLMEngine (engine loop thread) and the OpenAI-compatible server."""

from .async_engine import AsyncLLMEngine, EngineDeadError, RequestFinished, RequestStream
from .openai_server import ServerConfig, create_app

__all__ = [
    "AsyncLLMEngine",
    "EngineDeadError",
    "RequestFinished",
    "RequestStream",
    "ServerConfig",
    "create_app",
]
