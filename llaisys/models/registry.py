"""Architecture registry: a checkpoint's architecture name -> the adapter that reads it.

Every supported architecture runs on the one core decoder; an adapter says how its
checkpoints spell the config and the weights (GGUF names -> Hugging Face names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import UnsupportedModelError


@dataclass(frozen=True)
class Adapter:
    name: str  # registry key, = GGUF general.architecture, = config.json model_type
    hf_architectures: tuple[str, ...]  # config.json architectures[0]
    # q/k/v biases, from config.json
    attention_bias: Callable[[Mapping[str, Any]], bool]
    # llama.cpp's converter permutes attn_q/attn_k rows into its interleaved rope layout
    gguf_permutes_qk: bool


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        Adapter("qwen2", ("Qwen2ForCausalLM",), lambda cfg: True, gguf_permutes_qk=False),
        Adapter("llama", ("LlamaForCausalLM",),
                lambda cfg: bool(cfg.get("attention_bias", False)), gguf_permutes_qk=True),
    )
}
_BY_HF_ARCHITECTURE = {arch: a for a in ADAPTERS.values() for arch in a.hf_architectures}


def _unsupported(what: str) -> UnsupportedModelError:
    supported = ", ".join(
        f"{a.name} ({', '.join(a.hf_architectures)})" for a in ADAPTERS.values())
    return UnsupportedModelError(f"unsupported architecture {what}; supported: {supported}")


def adapter_for_hf(cfg: Mapping[str, Any]) -> Adapter:
    """The adapter of a config.json: by architectures[0], else by model_type."""
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list):
        raise _unsupported(f"architectures {archs!r} (expected a list of class names)")
    if archs:
        if archs[0] not in _BY_HF_ARCHITECTURE:
            raise _unsupported(repr(archs[0]))
        return _BY_HF_ARCHITECTURE[archs[0]]
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or model_type not in ADAPTERS:
        raise _unsupported(f"model_type {model_type!r}")
    return ADAPTERS[model_type]


def adapter_for_gguf(architecture: str) -> Adapter:
    """The adapter of a GGUF file's general.architecture."""
    if architecture not in ADAPTERS:
        raise _unsupported(repr(architecture))
    return ADAPTERS[architecture]


_GGUF_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_BLOCK = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GGUF_BLOCK_RE = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")


def gguf_to_hf_name(name: str) -> str | None:
    """The Hugging Face name of a GGUF tensor, None for tensors the decoder does not use
    (e.g. rope_freqs)."""
    if name in _GGUF_GLOBAL:
        return _GGUF_GLOBAL[name]
    m = _GGUF_BLOCK_RE.fullmatch(name)
    if m is None or m.group(2) not in _GGUF_BLOCK:
        return None
    return f"model.layers.{m.group(1)}.{_GGUF_BLOCK[m.group(2)]}.{m.group(3)}"
