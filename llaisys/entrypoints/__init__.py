"""User-facing entrypoints: LLM (offline)."""

from .llm import LLM

__all__ = ["LLM"]
