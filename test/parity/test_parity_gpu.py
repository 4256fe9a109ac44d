"""llaisys on the GPU against transformers on the same GPU: tiny random Qwen2 and Llama in
f32 and bf16, and the DeepSeek-R1-Distill-Qwen-1.5B shape (random bf16 weights) over a few
dozen greedy tokens. Runs with --device nvidia; skips elsewhere.

Greedy tokens are compared with teacher forcing: transformers reads the prompt and the
tokens llaisys chose, and at every position the two argmaxes must agree unless the
reference's top two logits lie within a near-tie margin of each other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llaisys.models import Model
from test.parity.helpers import greedy_with_logits
from test.utils.tiny_models import build_tiny_model

ROOT = Path(__file__).resolve().parents[2]
# dtype -> (max |logits - reference| relative to the reference's max, near-tie margin in
# logits). bf16: two implementations round at different points; over 28 layers of the
# 1.5B shape their logits drift by about 0.1, so top-2 gaps below 0.15 are ties.
TOLERANCE = {"float32": (1e-4, 1e-4), "bfloat16": (0.05, 0.15)}


@pytest.fixture(autouse=True)
def _gpu_only(test_device: str) -> None:
    if test_device != "nvidia":
        pytest.skip("GPU parity runs with --device nvidia")


def hf_logits_on_gpu(path: Path, dtype: str, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).cuda().eval()
    with torch.no_grad():
        logits = hf(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()
    del hf
    torch.cuda.empty_cache()
    return logits


def assert_greedy_parity(model_dir: Path, dtype: str, prompt: list[int], steps: int) -> None:
    model = Model.load(model_dir, dtype=dtype, device="nvidia")
    tokens, logits = greedy_with_logits(model, prompt, steps)
    ref = hf_logits_on_gpu(model_dir, dtype, prompt + tokens[:-1])
    rel, margin = TOLERANCE[dtype]
    diff = np.abs(logits - ref).max()
    assert diff <= rel * max(1.0, np.abs(ref).max()), f"max |logits - transformers| = {diff:.3g}"
    gen = ref[len(prompt) - 1:]
    for step, tok in enumerate(tokens):
        best = int(gen[step].argmax())
        assert tok == best or gen[step][best] - gen[step][tok] <= margin, (
            f"step {step}: llaisys {tok}, transformers {best} "
            f"(logit gap {gen[step][best] - gen[step][tok]:.3g})")


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp(request.param), request.param, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tiny_model_on_gpu_when_decoded_greedily_then_matches_transformers_on_gpu(
        tiny: Path, dtype: str):
    tokenizer = Model.load(tiny, dtype="float32").tokenizer
    prompt = tokenizer.encode(tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello world! How are you today?"}]))
    assert_greedy_parity(tiny, dtype, prompt, 32)


def test_distill_qwen_1p5b_shape_on_gpu_when_decoded_greedily_then_matches_transformers(
        tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("qwen1p5b")
    subprocess.run([sys.executable, str(ROOT / "scripts/make_random_checkpoint.py"), str(path)],
                   check=True)
    prompt = [int(t) for t in np.random.default_rng(0).integers(0, 151936, 64)]
    assert_greedy_parity(path, "bfloat16", prompt, 32)
