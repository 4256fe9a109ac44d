"""ModelConfig: what the core needs to know about a checkpoint, and the loading errors."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tensor import DataType


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated or malformed; the message names the file and tensor."""


class UnsupportedModelError(ValueError):
    """The checkpoint describes a model llaisys cannot run; the message lists what it can."""


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object, or a CheckpointError naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: malformed JSON: {e}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def config_int(where: str, key: str, value: Any) -> int:
    """value as an int, or a CheckpointError naming where it came from."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def config_float(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckpointError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def config_ids(where: str, key: str, value: Any) -> list[int]:
    """A token id or a list of them (None: none)."""
    if value is None:
        return []
    return [config_int(where, key, v) for v in (value if isinstance(value, list) else [value])]


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
        where = "config.json"

        def need(key: str) -> int:
            if key not in cfg:
                raise CheckpointError(f"{where}: missing {key!r}")
            return config_int(where, key, cfg[key])

        def optional_int(key: str, default: int) -> int:
            value = cfg.get(key)
            return default if value is None else config_int(where, key, value)

        if cfg.get("hidden_act", "silu") != "silu":
            raise UnsupportedModelError(
                f"{where}: hidden_act {cfg['hidden_act']!r} is not supported (only 'silu')")
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        if not isinstance(rope, dict):
            raise CheckpointError(f"{where}: rope_parameters/rope_scaling must be an object, "
                                  f"got {rope!r}")
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise UnsupportedModelError(
                f"{where}: rope type {rope_type!r} is not supported (only 'default')")
        hidden, heads = need("hidden_size"), need("num_attention_heads")
        if heads <= 0:
            raise CheckpointError(f"{where}: num_attention_heads must be positive, got {heads}")
        bos = cfg.get("bos_token_id")
        return cls(
            architecture=architecture,
            hidden_size=hidden,
            num_layers=need("num_hidden_layers"),
            num_heads=heads,
            num_kv_heads=optional_int("num_key_value_heads", heads),
            head_dim=optional_int("head_dim", hidden // heads),
            intermediate_size=need("intermediate_size"),
            vocab_size=need("vocab_size"),
            max_position=need("max_position_embeddings"),
            rms_norm_eps=config_float(where, "rms_norm_eps", cfg.get("rms_norm_eps", 1e-6)),
            rope_theta=config_float(where, "rope_theta", cfg.get("rope_theta")
                                    or rope.get("rope_theta") or 10000.0),
            attention_bias=attention_bias,
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            dtype=dtype,
            bos_token_id=None if bos is None else config_int(where, "bos_token_id", bos),
            eos_token_ids=config_ids(where, "eos_token_id", cfg.get("eos_token_id")),
        )

    @classmethod
    def from_gguf(cls, meta: Mapping[str, Any], *, architecture: str, attention_bias: bool,
                  tie_word_embeddings: bool, dtype: DataType) -> ModelConfig:
        """From GGUF metadata ({arch}.* keys and the tokenizer's vocabulary)."""
        arch = meta["general.architecture"]
        where = "GGUF metadata"

        def need(key: str) -> Any:
            if key not in meta:
                raise CheckpointError(f"{where}: missing {key!r}")
            return meta[key]

        def count(key: str, default: int | None = None) -> int:
            value = need(key) if default is None else meta.get(key, default)
            return config_int(where, key, value)

        hidden, heads = count(f"{arch}.embedding_length"), count(f"{arch}.attention.head_count")
        if heads <= 0:
            raise CheckpointError(f"{where}: {arch}.attention.head_count must be positive, "
                                  f"got {heads}")
        tokens = need("tokenizer.ggml.tokens")
        if not isinstance(tokens, list):
            raise CheckpointError(f"{where}: tokenizer.ggml.tokens must be an array of strings")
        bos = meta.get("tokenizer.ggml.bos_token_id")
        return cls(
            architecture=architecture,
            hidden_size=hidden,
            num_layers=count(f"{arch}.block_count"),
            num_heads=heads,
            num_kv_heads=count(f"{arch}.attention.head_count_kv", heads),
            head_dim=count(f"{arch}.attention.key_length", hidden // heads),
            intermediate_size=count(f"{arch}.feed_forward_length"),
            vocab_size=len(tokens),
            max_position=count(f"{arch}.context_length"),
            rms_norm_eps=config_float(where, "layer_norm_rms_epsilon",
                                      need(f"{arch}.attention.layer_norm_rms_epsilon")),
            rope_theta=config_float(where, "rope.freq_base",
                                    meta.get(f"{arch}.rope.freq_base", 10000.0)),
            attention_bias=attention_bias,
            tie_word_embeddings=tie_word_embeddings,
            dtype=dtype,
            bos_token_id=None if bos is None else config_int(where, "bos_token_id", bos),
            eos_token_ids=config_ids(where, "eos_token_id",
                                     meta.get("tokenizer.ggml.eos_token_id")),
        )
