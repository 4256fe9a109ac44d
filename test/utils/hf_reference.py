"""Tiny random Qwen2 / Llama models built with transformers (the test reference) and the
same weights as llaisys WeightTensors, for decode tests on in-memory models."""

from __future__ import annotations

import numpy as np
import torch

from llaisys import DataType
from llaisys.models import Model, ModelConfig, WeightTensor

VOCAB = 300


def tiny_hf_model(arch: str, seed: int = 0, hidden: int = 64, heads: tuple[int, int] = (4, 2),
                  max_position: int = 256) -> torch.nn.Module:
    """Qwen2: q/k/v biases, untied lm_head. Llama: no biases, tied embeddings.
    heads: (query heads, kv heads); the head dim is hidden // query heads."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    common = dict(hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=heads[0], num_key_value_heads=heads[1], vocab_size=VOCAB,
                  max_position_embeddings=max_position, rms_norm_eps=1e-6, rope_theta=10000.0)
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=False, **common))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, attention_bias=False,
                                             **common))
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    with torch.no_grad():  # weights large enough that every layer matters to the logits
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name
                    else 0.15 * torch.randn_like(p))
    return model.eval()


def model_config(hf: torch.nn.Module) -> ModelConfig:
    arch = "qwen2" if "Qwen2" in type(hf).__name__ else "llama"
    return ModelConfig.from_hf(hf.config.to_dict(), architecture=arch,
                               attention_bias=arch == "qwen2", dtype=DataType.F32)


def hf_weights(hf: torch.nn.Module) -> list[WeightTensor]:
    """Every tensor the core needs, float32 host memory under its Hugging Face name."""
    out = []
    for name, t in hf.state_dict().items():
        if name == "lm_head.weight" and hf.config.tie_word_embeddings:
            continue
        data = np.ascontiguousarray(t.detach().float().numpy())
        out.append(WeightTensor(name, data, DataType.F32, tuple(data.shape)))
    return out


def tiny_model(arch: str, dtype: str = "float32", seed: int = 0, device: str = "cpu",
               hidden: int = 64, heads: tuple[int, int] = (4, 2), max_position: int = 256
               ) -> tuple[Model, torch.nn.Module]:
    hf = tiny_hf_model(arch, seed, hidden, heads, max_position)
    return Model.from_config(model_config(hf), hf_weights(hf), dtype=dtype, device=device), hf


def hf_logits(hf: torch.nn.Module, tokens: list[int]) -> np.ndarray:
    """Logits of every position of one sequence, float32 [len, vocab]."""
    with torch.no_grad():
        return hf(torch.tensor([tokens])).logits[0].float().numpy()
