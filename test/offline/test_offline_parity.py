"""LLM.generate against transformers on real (tiny random and SmolLM2) models, and the
batch invariance of greedy and seeded outputs on a real model."""

from pathlib import Path

import pytest

from llaisys.engine import SamplingParams
from llaisys.entrypoints import LLM
from test.utils.tiny_models import build_tiny_model

pytestmark = pytest.mark.usefixtures("hf_required")

PROMPTS = ["The quick brown fox", "Hello world! How are you today? I am fine",
           "def add(a, b):", "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and more numbers."]
ENGINE = dict(kv_cache_tokens=2048, block_size=16, max_num_seqs=16)


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def tiny(request, tmp_path_factory) -> tuple[Path, object]:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.set_num_threads(1)
    path = build_tiny_model(tmp_path_factory.mktemp(request.param), request.param)
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return path, hf


def hf_greedy(hf, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt_ids]), do_sample=False,
                          max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                          attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long))
    return out[0, len(prompt_ids):].tolist()


def test_tiny_models_when_generated_greedy_then_equal_transformers_generate(tiny, test_device):
    path, hf = tiny
    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    results = LLM(str(path), device=test_device, **ENGINE).generate(PROMPTS, params,
                                                                    use_tqdm=False)
    for r in results:
        assert r["token_ids"] == hf_greedy(hf, r["prompt_token_ids"], 16), r["prompt"]


def test_real_model_prompt_when_alone_batched_cached_or_preempted_then_greedy_identical(
        tiny, test_device):
    path, _ = tiny
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
    target = [(7 * j + 3) % 300 for j in range(40)]
    engine = dict(ENGINE, device=test_device)
    alone = LLM(str(path), **engine).generate([target], params, use_tqdm=False)[0]["token_ids"]
    mixed = [[(13 * i + 5 * j) % 300 for j in range(8 + 9 * i)] for i in range(16)]
    mixed[5] = target
    llm = LLM(str(path), max_num_batched_tokens=256, **engine)
    assert llm.generate(mixed, params, use_tqdm=False)[5]["token_ids"] == alone
    hit = llm.generate([target], params, use_tqdm=False)[0]
    assert llm.client.stats().prefix_hits >= 2 and hit["token_ids"] == alone
    tight = LLM(str(path), kv_cache_tokens=640, block_size=16, max_num_seqs=16,
                device=test_device)
    assert tight.generate(mixed, params, use_tqdm=False)[5]["token_ids"] == alone
    assert tight.client.stats().preemptions > 0
    slot = LLM(str(path), kv_layout="slot", **ENGINE)
    assert slot.generate(mixed, params, use_tqdm=False)[5]["token_ids"] == alone
    for layout in ("block", "slot"):  # decodes and prompt chunks in the same core batches
        interleaved = LLM(str(path), mixed_batches=True, max_num_batched_tokens=64,
                          kv_layout=layout, **engine)
        assert interleaved.generate(mixed, params, use_tqdm=False)[5]["token_ids"] == alone


def test_real_model_seeded_sampling_when_alone_or_batched_then_identical(tiny):
    path, _ = tiny
    seeded = SamplingParams(temperature=1.0, top_p=0.95, seed=99, max_tokens=20, ignore_eos=True)
    llm = LLM(str(path), **ENGINE)
    alone = llm.generate(PROMPTS[1], seeded, use_tqdm=False)[0]["token_ids"]
    others = SamplingParams(temperature=0.8, max_tokens=12)
    batched = llm.generate(PROMPTS, [others, seeded, others, others], use_tqdm=False)
    assert batched[1]["token_ids"] == alone


def test_smollm2_when_generated_greedy_then_equals_transformers_generate(smollm2_gguf: Path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gguf = smollm2_gguf
    torch.set_num_threads(1)
    llm = LLM(str(gguf), kv_cache_tokens=1024, max_num_seqs=4)
    prompts = ["The capital of France is", "def fibonacci(n):"]
    params = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    results = llm.generate(prompts, params, use_tqdm=False)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    for r in results:
        assert r["token_ids"] == hf_greedy(hf, r["prompt_token_ids"], 12), r["prompt"]
