"""Batched decode on tiny random Qwen2 (biases, untied) and Llama (tied) models: batching,
chunked prefill, both KV layouts, sampling, and logits against transformers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from llaisys.models import Model
from test.utils.batch_builders import CacheRunner, SeqChunk, build_decode_batch
from test.utils.hf_reference import VOCAB, hf_logits, hf_weights, model_config, tiny_model
from test.utils.op_helpers import assert_module_passes_on_path, inside_forced_path_rerun

torch.set_num_threads(1)

LAYOUTS = ["slot", "block"]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def pair(request, test_device: str) -> tuple[Model, torch.nn.Module]:
    return tiny_model(request.param, device=test_device)


def tokens_of(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


def alone(model: Model, layout: str, tokens: list[int]) -> np.ndarray:
    """Logits of every position of one sequence prefilled at once in a fresh cache."""
    return CacheRunner(model, layout).decode([SeqChunk(0, tokens, outputs="all")]).logits


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sequences_of_different_lengths_when_batched_with_prefill_and_decode_then_match_alone(
        pair, layout):
    model, _ = pair
    a, b, c = tokens_of(1, 13), tokens_of(2, 5), tokens_of(3, 9)
    run = CacheRunner(model, layout)
    first = run.decode([SeqChunk(0, a[:12], outputs="all"), SeqChunk(1, b[:3], outputs="all")])
    # A decodes one token, B finishes its prompt, C prefills all of it: one call.
    second = run.decode([SeqChunk(0, a[12:], start=12, outputs="all"),
                         SeqChunk(1, b[3:], start=3, outputs="all"),
                         SeqChunk(2, c, outputs="all")])
    got_a = np.concatenate([first.logits[:12], second.logits[:1]])
    got_b = np.concatenate([first.logits[12:], second.logits[1:3]])
    got_c = second.logits[3:]
    for got, toks in ((got_a, a), (got_b, b), (got_c, c)):
        np.testing.assert_allclose(got, alone(model, layout, toks), atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prompt_when_prefilled_in_chunks_then_equals_prefilled_at_once(pair, layout):
    model, _ = pair
    toks = tokens_of(4, 16)
    run, got, start = CacheRunner(model, layout), [], 0
    for size in (5, 1, 7, 3):
        got.append(run.decode([SeqChunk(0, toks[start:start + size], start=start,
                                        outputs="all")]).logits)
        start += size
    np.testing.assert_allclose(np.concatenate(got), alone(model, layout, toks), atol=1e-5,
                               rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prompt_and_greedy_steps_when_compared_with_transformers_then_within_1e_4(pair, layout):
    model, hf = pair
    toks = tokens_of(5, 12)
    run = CacheRunner(model, layout)
    res = run.decode([SeqChunk(0, toks, outputs="all")], sampling={"temperature": 0.0})
    np.testing.assert_allclose(res.logits, hf_logits(hf, toks), atol=1e-4, rtol=0)
    for _ in range(6):
        ref = hf_logits(hf, toks)[-1]
        assert int(res.token_ids[-1]) == int(np.argmax(ref))
        toks.append(int(res.token_ids[-1]))
        res = run.decode([SeqChunk(0, toks[-1:], start=len(toks) - 1)],
                         sampling={"temperature": 0.0})
        np.testing.assert_allclose(res.logits[0], hf_logits(hf, toks)[-1], atol=1e-4, rtol=0)


ATOL_150 = 3e-4
# (hidden, (query heads, kv heads)): head dims with and without a 16-wide tail (6, 8, 24,
# 40), groups of 1 to 6 query heads per kv head (the CPU kernels take up to 4 at a time);
# with head dim 6, q/k/v widths (30, 6, 6) end in part-filled 4-row weight blocks, next to
# the following product's first block in the shared q/k/v pass.
HEAD_SHAPES = [(40, (5, 5)), (120, (5, 1)), (192, (8, 4)), (240, (6, 1)), (144, (6, 2)),
               (30, (5, 1))]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("hidden,heads", HEAD_SHAPES)
def test_head_shapes_when_prompt_and_steps_decoded_then_within_3e_4_of_transformers(
        hidden, heads, layout, test_device):
    model, hf = tiny_model("llama", device=test_device, hidden=hidden, heads=heads)
    # 150 keys: whole blocks of 16 and a tail (SLOT: blocks of one cell); single-token steps
    # over this many keys split them among the CPU threads when the kv heads alone are too
    # few to share out.
    toks = tokens_of(12, 150)  # f32 rounding over 150 positions: 3e-4, not 1e-4
    run = CacheRunner(model, layout, n_cells=256, block_size=16)
    res = run.decode([SeqChunk(0, toks, outputs="all")], sampling={"temperature": 0.0})
    np.testing.assert_allclose(res.logits, hf_logits(hf, toks), atol=ATOL_150, rtol=0)
    for _ in range(3):
        toks.append(int(res.token_ids[-1]))
        res = run.decode([SeqChunk(0, toks[-1:], start=len(toks) - 1)],
                         sampling={"temperature": 0.0})
        np.testing.assert_allclose(res.logits[0], hf_logits(hf, toks)[-1], atol=ATOL_150, rtol=0)


def test_q_projection_quantized_when_decoding_then_matches_its_dequantized_f32_model(
        test_device):
    if test_device != "cpu":
        pytest.skip("quantized weights are kept on the CPU only")
    from gguf import GGMLQuantizationType, quants

    from llaisys import DataType
    from llaisys.models import WeightTensor
    from test.utils.hf_reference import hf_weights, model_config, tiny_hf_model

    # q (Q8_0) differs in dtype from k and v (F32): the layer's q/k/v products run apart.
    hf = tiny_hf_model("qwen2")
    name = "model.layers.0.self_attn.q_proj.weight"
    quant, plain = [], []
    for wt in hf_weights(hf):
        if wt.name == name:
            blocks = quants.quantize(wt.data, GGMLQuantizationType.Q8_0)
            values = quants.dequantize(blocks, GGMLQuantizationType.Q8_0).astype(np.float32)
            quant.append(WeightTensor(name, blocks, DataType.Q8_0, wt.shape))
            plain.append(WeightTensor(name, values, DataType.F32, wt.shape))
        else:
            quant.append(wt)
            plain.append(wt)
    toks = tokens_of(13, 9)
    got = alone(Model.from_config(model_config(hf), quant), "block", toks)
    want = alone(Model.from_config(model_config(hf), plain), "block", toks)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_long_and_fresh_sequences_when_decoded_on_4_threads_then_each_matches_alone(
        test_device):
    """Few (token, kv head) units for 4 threads: keys are split into parts, and the fresh
    sequence's single key leaves some of its parts empty."""
    from llaisys import runtime

    model, _ = tiny_model("llama", device=test_device, hidden=120, heads=(5, 1))
    long_toks, fresh = tokens_of(14, 150), tokens_of(15, 1)
    threads = runtime.get_num_threads()
    runtime.set_num_threads(4)
    try:
        run = CacheRunner(model, "block", n_cells=256, block_size=16)
        run.decode([SeqChunk(0, long_toks[:-1], outputs="none")])
        res = run.decode([SeqChunk(0, long_toks[-1:], start=149), SeqChunk(1, fresh)])
    finally:
        runtime.set_num_threads(threads)
    long_alone = CacheRunner(model, "block", n_cells=256, block_size=16).decode(
        [SeqChunk(0, long_toks)]).logits
    np.testing.assert_allclose(res.logits[0], long_alone[-1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(res.logits[1], alone(model, "block", fresh)[-1], atol=1e-5,
                               rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_some_flagged_rows_when_decoding_then_rows_in_token_order_match_alone(pair, layout):
    model, _ = pair
    a, b = tokens_of(10, 6), tokens_of(11, 4)
    res = CacheRunner(model, layout).decode([SeqChunk(0, a, outputs=[0, 2, 5]),
                                             SeqChunk(1, b, outputs=[1])])
    want = np.concatenate([alone(model, layout, a)[[0, 2, 5]], alone(model, layout, b)[[1]]])
    np.testing.assert_allclose(res.logits, want, atol=1e-5, rtol=0)


def test_default_output_when_batch_has_no_flags_then_only_last_token_outputs(pair):
    model, _ = pair
    toks = tokens_of(6, 7)
    batch = build_decode_batch([SeqChunk(0, toks, outputs="all")], "slot")
    batch.output = None
    res = model.decode(model.create_kv_cache("slot", 16), batch)
    np.testing.assert_allclose(res.logits, alone(model, "slot", toks)[-1:], atol=1e-5, rtol=0)


def test_no_output_rows_when_decoding_then_nothing_returned_and_tokens_cached(pair):
    model, _ = pair
    toks = tokens_of(7, 6)
    run = CacheRunner(model, "slot")
    res = run.decode([SeqChunk(0, toks[:5], outputs="none")])
    assert res.logits.shape == (0, VOCAB) and res.token_ids is None
    last = run.decode([SeqChunk(0, toks[5:], start=5)]).logits
    np.testing.assert_allclose(last, alone(model, "slot", toks)[-1:], atol=1e-5, rtol=0)


def test_seeded_sampling_when_repeated_then_same_tokens_and_in_vocab(pair):
    model, _ = pair
    toks = tokens_of(8, 5)
    params = {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "seed": 7}
    ids = [CacheRunner(model, "block").decode([SeqChunk(0, toks, outputs="all")], sampling=params,
                                         want_logits=False).token_ids for _ in range(2)]
    np.testing.assert_array_equal(ids[0], ids[1])
    assert ids[0].shape == (5,) and ((0 <= ids[0]) & (ids[0] < VOCAB)).all()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_model_when_decoding_then_close_to_float32(pair, dtype, test_device):
    model, hf = pair
    from test.utils.hf_reference import hf_weights, model_config

    half = Model.from_config(model_config(hf), hf_weights(hf), dtype=dtype, device=test_device)
    toks = tokens_of(9, 10)
    ref = alone(model, "block", toks)
    got = alone(half, "block", toks)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
    assert half.kv_bytes_per_token() * 2 == model.kv_bytes_per_token()


@pytest.mark.skipif(inside_forced_path_rerun(), reason="already on a forced kernel path")
@pytest.mark.parametrize("path", ["generic", "avx2"])
def test_lower_kernel_path_when_decoding_then_module_passes(path: str, test_device: str):
    if test_device != "cpu":
        pytest.skip("the kernel path is a CPU choice")
    assert_module_passes_on_path(__file__, path)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_projections_when_set_again_then_decode_matches_a_model_built_with_them(
        test_device, dtype):
    # On the GPU a layer's q, k and v weights and biases are row ranges of one matrix (bf16:
    # written there through the conversion, read by the tensor-core attention at the
    # matrix's row pitch): a weight set again after decoding must land in its rows.
    model, hf = tiny_model("qwen2", dtype=dtype, device=test_device)
    toks = tokens_of(9, 8)
    before = alone(model, "block", toks)
    weights = {w.name: w for w in hf_weights(hf)}
    for name in ("model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.bias",
                 "model.layers.1.self_attn.q_proj.weight"):
        w = weights[name]
        weights[name] = dataclasses.replace(w, data=np.ascontiguousarray(w.data[::-1] * 2.0))
        model.set_weight(name, weights[name].data, w.dtype, w.shape)
    after = alone(model, "block", toks)
    fresh = Model.from_config(model_config(hf), list(weights.values()), dtype=dtype,
                              device=test_device)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, alone(fresh, "block", toks), atol=1e-5, rtol=0)
