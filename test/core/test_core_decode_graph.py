"""Decode steps on the GPU that sample one token per sequence run as CUDA graphs: the
attention splits each token's keys by a power-of-two bucket of the longest context and loads
the keys before the token's own before the kernel before it has finished, and a merge
kernel joins the splits. A step that asks for logits runs eagerly, split by its exact
context. So a graph step's greedy token must be the argmax of the same step's eager logits,
up to a near tie, whatever the context, head dim or architecture.
Runs with --device nvidia; skips elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from llaisys.models import Model
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.hf_reference import VOCAB, tiny_model

GREEDY = {"temperature": 0.0}
# Logits of this bf16 model reach ~10; the two paths round attention outputs to bf16 after
# merging splits in different orders.
NEAR_TIE = 0.1


# (architecture, hidden size, (query heads, KV heads)) in bf16: head dims 64 and 128 (the
# tensor-core decode kernel), group sizes 2 and 4; Llama has no q/k/v bias.
MODELS = [("qwen2", 256, (4, 2)), ("qwen2", 512, (4, 2)), ("llama", 256, (4, 2)),
          ("llama", 2048, (16, 4))]


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: f"{m[0]}-hidden{m[1]}")
def model(test_device: str, request: pytest.FixtureRequest) -> Model:
    if test_device != "nvidia":
        pytest.skip("CUDA graph steps run with --device nvidia")
    arch, hidden, heads = request.param
    return tiny_model(arch, dtype="bfloat16", device="nvidia", hidden=hidden, heads=heads,
                      max_position=1024)[0]


def prompt(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


@pytest.mark.parametrize("contexts", [
    [1],  # one key: a single split
    [100],  # bucket 128: 2 splits
    [1, 63, 64, 65, 300],  # bucket 512: 8 splits, some of them empty for the short ones
    [700],  # bucket 1024: 16 splits
    [5, 40],  # a graph of its own size (2), one split each
], ids=str)
def test_cached_contexts_when_greedy_graph_steps_then_tokens_are_eager_argmaxes(
        model: Model, contexts: list[int]):
    graph = CacheRunner(model, "block", n_cells=2048, block_size=16, n_seq_max=len(contexts))
    eager = CacheRunner(model, "block", n_cells=2048, block_size=16, n_seq_max=len(contexts))
    prompts = [prompt(seed, n) for seed, n in enumerate(contexts)]
    for run in (graph, eager):
        run.decode([SeqChunk(s, p) for s, p in enumerate(prompts)])
    tokens = [p[-1] for p in prompts]
    for step in range(3):
        chunks = [SeqChunk(s, [tokens[s]], start=n + step) for s, n in enumerate(contexts)]
        sampled = graph.decode(chunks, sampling=GREEDY, want_logits=False).token_ids
        logits = eager.decode(chunks).logits
        for s, tok in enumerate(sampled):
            best = int(logits[s].argmax())
            gap = float(logits[s][best] - logits[s][tok])
            assert gap <= NEAR_TIE, (
                f"step {step}, context {contexts[s] + step}: graph {tok}, eager {best} "
                f"(gap {gap:.3g})")
        tokens = [int(t) for t in sampled]
