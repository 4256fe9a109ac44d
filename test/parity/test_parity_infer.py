"""Infer baseline on a real Hugging Face directory (--model-path, e.g.
DeepSeek-R1-Distill-Qwen-1.5B): llaisys greedy generation equals transformers' (f32).

Both run in f32; transformers is teacher-forced on llaisys' tokens, and a different greedy
token is accepted only at a near tie (top-2 logits closer than TIE_MARGIN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llaisys.models import Model
from test.parity.helpers import greedy_with_logits

STEPS = 32
TIE_MARGIN = 1e-3
PROMPTS = ["Who are you?", "What is 17 * 23? Answer briefly."]


@pytest.fixture(scope="module")
def hf_dir(model_path: Path | None) -> Path:
    if model_path is None:
        pytest.skip("no --model-path given")
    return model_path


@pytest.mark.parametrize("prompt", PROMPTS)
def test_model_path_when_generating_greedily_then_tokens_equal_transformers(
        hf_dir: Path, hf_required: None, prompt: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = Model.load(hf_dir, dtype="float32")
    tok, hf_tok = model.tokenizer, AutoTokenizer.from_pretrained(hf_dir)
    messages = [{"role": "user", "content": prompt}]
    text = tok.apply_chat_template(messages)
    assert text == hf_tok.apply_chat_template(messages, tokenize=False,
                                              add_generation_prompt=True)
    ids = tok.encode(text)
    assert ids == hf_tok.encode(text)
    tokens, _ = greedy_with_logits(model, ids, STEPS)

    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(torch.tensor([ids + tokens[:-1]])).logits[0, len(ids) - 1:].numpy()
    for step, (ours, row) in enumerate(zip(tokens, ref, strict=True)):
        if ours != int(row.argmax()):
            top2 = np.sort(row)[-2:]
            assert top2[1] - top2[0] < TIE_MARGIN, (
                f"step {step}: llaisys chose {ours}, transformers {int(row.argmax())} "
                f"(margin {top2[1] - top2[0]:.3g}); llaisys: {tok.decode(tokens)!r}")
