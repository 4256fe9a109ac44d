"""The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF): llaisys greedy continuations of
chat prompts against transformers loading the same GGUF (dequantized, f32).

transformers runs on llaisys' own token sequence (teacher forcing), so every step compares
the same context; a different greedy token is accepted only where transformers' top-2
logits are closer than TIE_MARGIN (a near tie that quantized kernels may break either way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llaisys.models import Model
from test.parity.helpers import greedy_with_logits

STEPS = 24
TIE_MARGIN = 1e-3
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain gravity to a child in one sentence.",
]


@pytest.fixture(scope="module")
def gguf_path(smollm2_gguf: Path) -> Path:
    return smollm2_gguf


@pytest.fixture(scope="module")
def hf_model(gguf_path: Path):  # noqa: ANN201 - a transformers model
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def model(gguf_path: Path) -> Model:
    return Model.load(gguf_path, dtype="float32")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_smollm2_chat_prompt_when_decoded_greedily_then_tokens_match_transformers(
        model: Model, hf_model, prompt: str):  # noqa: ANN001
    import torch

    tok = model.tokenizer
    ids = tok.encode(tok.apply_chat_template([{"role": "user", "content": prompt}]))
    tokens, _ = greedy_with_logits(model, ids, STEPS)
    with torch.no_grad():
        ref = hf_model(torch.tensor([ids + tokens[:-1]])).logits[0, len(ids) - 1:].numpy()
    for step, (ours, row) in enumerate(zip(tokens, ref, strict=True)):
        best = int(row.argmax())
        if ours != best:
            top2 = np.sort(row)[-2:]
            margin = float(top2[1] - top2[0])
            assert margin < TIE_MARGIN, (
                f"step {step}: llaisys chose {ours} ({tok.decode([ours])!r}), transformers "
                f"{best} ({tok.decode([best])!r}) with a top-2 margin of {margin:.3g}; "
                f"llaisys: {tok.decode(tokens)!r}")


def test_smollm2_tokenizer_when_compared_then_equals_transformers_gguf_tokenizer(
        model: Model, gguf_path: Path):
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    ours = model.tokenizer
    texts = [*PROMPTS, "Unicode: héllo wörld 你好 🤗 ∑", "<|im_start|>user\nhi<|im_end|>\n",
             "  spaces\tand\n\nnewlines 12345"]
    for text in texts:
        ids = theirs.encode(text)
        assert ours.encode(text) == ids, text
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)
    msgs = [{"role": "user", "content": PROMPTS[0]}]
    assert ours.apply_chat_template(msgs) == theirs.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True)
