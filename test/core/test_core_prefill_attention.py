"""Prefill attention over a paged (BLOCK) KV cache on the GPU: batches whose sequences
bring many query tokens go through the tensor-core kernel, tile by tile (several sequences
in one tile, tails shorter than a tile, prompts continuing a cached prefix, grouped-query
heads), the rest through the per-token kernel. bf16 logits of every position are checked
against transformers in float32 on the CPU. Runs with --device nvidia; skips elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llaisys.models import Model
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.hf_reference import VOCAB, hf_logits, hf_weights, model_config

torch.set_num_threads(1)

# max |logits - reference| relative to the reference's largest |logit|: bf16 activations
# between ops drift about 1% from float32; a token reading another sequence's keys or a
# future key moves its logits by tens of percent.
BF16_TOLERANCE = 0.05


@pytest.fixture(autouse=True)
def _gpu_only(test_device: str) -> None:
    if test_device != "nvidia":
        pytest.skip("the tensor-core prefill kernel runs with --device nvidia")


def qwen2_with_head_dim(head_dim: int, heads: int, kv_heads: int) -> torch.nn.Module:
    """Two random Qwen2 layers with heads of head_dim (64 and 128 take the tensor cores)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(5)
    hidden = head_dim * heads
    model = Qwen2ForCausalLM(Qwen2Config(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=VOCAB,
        max_position_embeddings=1024, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=False))
    with torch.no_grad():  # attention scores of order one: softmaxes neither flat nor one-hot
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name
                    else torch.randn_like(p) / hidden ** 0.5)
    return model.eval()


def tokens_of(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


def assert_bf16_close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    diff = np.abs(got - ref).max()
    assert diff <= BF16_TOLERANCE * np.abs(ref).max(), f"{what}: max |logits - ref| = {diff:.3g}"


@pytest.mark.parametrize("head_dim, heads, kv_heads", [(64, 6, 2), (128, 4, 1)])
def test_batched_prompts_when_prefilled_on_paged_cache_then_logits_match_transformers(
        head_dim: int, heads: int, kv_heads: int):
    hf = qwen2_with_head_dim(head_dim, heads, kv_heads)
    model = Model.from_config(model_config(hf), hf_weights(hf), dtype="bfloat16",
                              device="nvidia")
    run = CacheRunner(model, "block", n_cells=2048, block_size=16, n_seq_max=8)
    seqs = {s: tokens_of(20 + s, n) for s, n in enumerate((170, 38, 150, 64, 20))}
    got: dict[int, list[np.ndarray]] = {s: [] for s in seqs}

    def step(chunks: list[tuple[int, int, int]]) -> None:
        res = run.decode([SeqChunk(s, seqs[s][a:b], start=a, outputs="all")
                          for s, a, b in chunks])
        row = 0
        for s, a, b in chunks:
            got[s].append(res.logits[row:row + b - a])
            row += b - a

    # Tiles of 64 tokens: 100 | 37 | 150 share tiles 1 and 2 between two sequences, and
    # the last tile is 31 tokens of one.
    step([(0, 0, 100), (1, 0, 37), (2, 0, 150)])
    # 70 tokens after a cached prefix of 100, a decode token and a fresh prompt: a tile of
    # three sequences, then a tail of 7 left to the per-token kernel.
    step([(0, 100, 170), (1, 37, 38), (3, 0, 64)])
    # One token of each of four sequences and a 20-token prompt: five sequences in one
    # tile, left to the per-token kernel.
    for s, token in ((0, 1), (2, 2), (3, 3)):
        seqs[s].append(token)
    step([(0, 170, 171), (2, 150, 151), (3, 64, 65), (4, 0, 20)])
    for s, parts in got.items():
        assert_bf16_close(np.concatenate(parts), hf_logits(hf, seqs[s]), f"sequence {s}")
