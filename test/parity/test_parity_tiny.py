"""Tiny random Qwen2 and Llama models: llaisys (f32) against transformers, logits and greedy
tokens over a prompt and 32 decode steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llaisys.models import DecodeBatch, Model
from test.parity.helpers import greedy_with_logits
from test.utils.tiny_models import build_tiny_model

STEPS = 32
ATOL = 1e-4


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp(request.param), request.param, seed=3)


def test_tiny_model_when_decoded_greedily_then_logits_and_tokens_match_transformers(tiny: Path):
    import torch
    from transformers import AutoModelForCausalLM

    model = Model.load(tiny, dtype="float32")
    prompt = model.tokenizer.encode(model.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello world! How are you today?"}]))
    tokens, logits = greedy_with_logits(model, prompt, STEPS)

    hf = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    with torch.no_grad():
        ids = torch.tensor([prompt + tokens[:-1]])
        ref = hf(ids).logits[0].numpy()
    hf_tokens = ref[len(prompt) - 1:].argmax(-1).tolist()
    assert tokens == hf_tokens
    diff = np.abs(logits - ref).max()
    assert diff <= ATOL, f"max |logits - transformers| = {diff:.3g}"


def test_tiny_model_when_batched_prompts_decoded_then_match_single_runs(tiny: Path):
    """Two sequences in one batch give the logits each gives alone."""
    model = Model.load(tiny, dtype="float32")
    a, b = model.tokenizer.encode("The quick brown fox"), model.tokenizer.encode("def add(a, b):")
    _, alone_a = greedy_with_logits(model, a, 1)
    _, alone_b = greedy_with_logits(model, b, 1)
    kv = model.create_kv_cache(layout="slot", n_cells=64, n_seq_max=2)
    n = len(a) + len(b)
    out = model.decode(kv, DecodeBatch(
        tokens=np.array(a + b, np.int64),
        positions=np.array([*range(len(a)), *range(len(b))], np.int64),
        seq_ids=np.array([0] * len(a) + [1] * len(b), np.int32),
        output=np.ones(n, np.int8), want_logits=True))
    np.testing.assert_allclose(out.logits[:len(a)], alone_a, atol=ATOL)
    np.testing.assert_allclose(out.logits[len(a):], alone_b, atol=ATOL)
