"""ModelConfig: what the core needs to know about a checkpoint, and the loading errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..tensor import DataType


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated or malformed; the message names the file and tensor."""


class UnsupportedModelError(ValueError):
    """The checkpoint describes a model llaisys cannot run; the message lists what it can."""


@dataclass
class ModelConfig:
    architecture: str  # registry key: "qwen2" | "llama"
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position: int
    rms_norm_eps: float
    rope_theta: float
    attention_bias: bool
    tie_word_embeddings: bool
    dtype: DataType  # the checkpoint's float dtype
    bos_token_id: int | None
    eos_token_ids: list[int]

    def __post_init__(self) -> None:
        for field in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                      "intermediate_size", "vocab_size", "max_position"):
            if getattr(self, field) <= 0:
                raise CheckpointError(f"model config: {field} must be positive, got "
                                      f"{getattr(self, field)}")
        if self.num_heads % self.num_kv_heads:
            raise CheckpointError(f"model config: num_heads ({self.num_heads}) is not a multiple "
                                  f"of num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise CheckpointError(f"model config: head_dim must be even, got {self.head_dim}")

    @classmethod
    def from_hf(cls, cfg: Mapping[str, Any], *, architecture: str, attention_bias: bool,
                dtype: DataType) -> ModelConfig:
        """From a Hugging Face config.json (transformers 4 and 5 spellings of rope)."""
        def need(key: str) -> Any:
            if key not in cfg:
                raise CheckpointError(f"config.json: missing {key!r}")
            return cfg[key]

        if cfg.get("hidden_act", "silu") != "silu":
            raise UnsupportedModelError(
                f"config.json: hidden_act {cfg['hidden_act']!r} is not supported (only 'silu')")
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise UnsupportedModelError(
                f"config.json: rope type {rope_type!r} is not supported (only 'default')")
        hidden, heads = int(need("hidden_size")), int(need("num_attention_heads"))
        eos = cfg.get("eos_token_id")
        return cls(
            architecture=architecture,
            hidden_size=hidden,
            num_layers=int(need("num_hidden_layers")),
            num_heads=heads,
            num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate_size=int(need("intermediate_size")),
            vocab_size=int(need("vocab_size")),
            max_position=int(need("max_position_embeddings")),
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            rope_theta=float(cfg.get("rope_theta") or rope.get("rope_theta") or 10000.0),
            attention_bias=attention_bias,
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            dtype=dtype,
            bos_token_id=cfg.get("bos_token_id"),
            eos_token_ids=[] if eos is None else [eos] if isinstance(eos, int) else list(eos),
        )

    @classmethod
    def from_gguf(cls, meta: Mapping[str, Any], *, architecture: str, attention_bias: bool,
                  tie_word_embeddings: bool, dtype: DataType) -> ModelConfig:
        """From GGUF metadata ({arch}.* keys and the tokenizer's vocabulary)."""
        arch = meta["general.architecture"]

        def need(key: str) -> Any:
            if key not in meta:
                raise CheckpointError(f"GGUF metadata: missing {key!r}")
            return meta[key]

        hidden = int(need(f"{arch}.embedding_length"))
        heads = int(need(f"{arch}.attention.head_count"))
        eos = meta.get("tokenizer.ggml.eos_token_id")
        return cls(
            architecture=architecture,
            hidden_size=hidden,
            num_layers=int(need(f"{arch}.block_count")),
            num_heads=heads,
            num_kv_heads=int(meta.get(f"{arch}.attention.head_count_kv", heads)),
            head_dim=int(meta.get(f"{arch}.attention.key_length", hidden // heads)),
            intermediate_size=int(need(f"{arch}.feed_forward_length")),
            vocab_size=len(need("tokenizer.ggml.tokens")),
            max_position=int(need(f"{arch}.context_length")),
            rms_norm_eps=float(need(f"{arch}.attention.layer_norm_rms_epsilon")),
            rope_theta=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
            attention_bias=attention_bias,
            tie_word_embeddings=tie_word_embeddings,
            dtype=dtype,
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_ids=[] if eos is None else [int(eos)],
        )
