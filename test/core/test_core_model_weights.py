"""Weight upload: names, shapes and dtypes checked with errors naming the weight; float
conversion and GGUF quantized blocks (kept quantized on CPU f32, else dequantized)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

import llaisys
from llaisys import DataType
from llaisys.models import Model, WeightTensor
from llaisys.tensor import f32_to_bf16_bits
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.hf_reference import VOCAB, hf_weights, model_config, tiny_hf_model

torch.set_num_threads(1)

PROMPT = [int(t) for t in np.random.default_rng(0).integers(0, VOCAB, 9)]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def hf(request) -> torch.nn.Module:
    return tiny_hf_model(request.param)


def logits(model: Model) -> np.ndarray:
    return CacheRunner(model, "block").decode([SeqChunk(0, PROMPT, outputs="all")]).logits


def replace(weights: list[WeightTensor], name: str, **changes) -> list[WeightTensor]:
    return [dataclasses.replace(w, **changes) if w.name == name else w for w in weights]


def test_weight_when_missing_then_error_names_it(hf):
    weights = [w for w in hf_weights(hf) if w.name != "model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(llaisys.InvalidArgumentError,
                       match=r"'model\.layers\.1\.mlp\.up_proj\.weight' is not set"):
        Model.from_config(model_config(hf), weights)


def test_model_without_weights_when_decoding_then_error_names_first_missing(hf):
    model = Model(model_config(hf), dtype=DataType.F32, device=llaisys.DeviceType.CPU,
                  device_id=0)
    kv = model.create_kv_cache("slot", 8)
    with pytest.raises(llaisys.InvalidArgumentError, match="model.embed_tokens.weight"):
        model.decode(kv, CacheRunner(model, "slot").batch([SeqChunk(0, [1])]))


def test_weight_when_wrong_shape_then_shape_error_names_it(hf):
    name = "model.layers.0.self_attn.k_proj.weight"
    bad = np.zeros((64, 64), dtype=np.float32)
    weights = replace(hf_weights(hf), name, data=bad, shape=bad.shape)
    message = rf"'{name}': shape \[64, 64\], expected \[32, 64\]"
    with pytest.raises(llaisys.ShapeError, match=message):
        Model.from_config(model_config(hf), weights)


def test_weight_when_unknown_name_then_error_names_it(hf):
    w = WeightTensor("model.layers.2.mlp.up_proj.weight", np.zeros((128, 64), np.float32),
                     DataType.F32, (128, 64))
    with pytest.raises(llaisys.InvalidArgumentError, match="unknown weight 'model.layers.2"):
        Model.from_config(model_config(hf), [*hf_weights(hf), w])


def test_norm_weight_when_quantized_then_dtype_error(hf):
    w = WeightTensor("model.norm.weight", np.zeros(68, np.uint8), DataType.Q8_0, (64,))
    with pytest.raises(llaisys.DTypeError, match="(?i)'model.norm.weight': dtype Q8_0"):
        Model.from_config(model_config(hf), [*hf_weights(hf), w])


def test_meta_when_invalid_then_invalid_argument(hf):
    config = dataclasses.replace(model_config(hf), rms_norm_eps=0.0)
    with pytest.raises(llaisys.InvalidArgumentError, match="rms_norm_eps"):
        Model.from_config(config, [])


def test_bf16_weights_when_run_in_f32_then_equal_f32_of_rounded_values(hf):
    weights = hf_weights(hf)
    as_bf16 = [dataclasses.replace(w, data=f32_to_bf16_bits(w.data), dtype=DataType.BF16)
               for w in weights]
    rounded = [dataclasses.replace(w, data=(f32_to_bf16_bits(w.data).astype(np.uint32) << 16)
                                   .view(np.float32)) for w in weights]
    np.testing.assert_allclose(logits(Model.from_config(model_config(hf), as_bf16)),
                               logits(Model.from_config(model_config(hf), rounded)),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_1"])
def test_quantized_projections_when_uploaded_then_match_their_dequantized_values(hf, qtype):
    """f32 on CPU keeps the blocks for the linear op; bf16 dequantizes them on upload."""
    gq = GGMLQuantizationType[qtype]
    quantized, dequantized = [], []
    for w in hf_weights(hf):
        if w.name.endswith("proj.weight") or w.name in ("lm_head.weight",
                                                        "model.embed_tokens.weight"):
            blocks = quantize(w.data, gq)
            quantized.append(dataclasses.replace(w, data=blocks, dtype=DataType[qtype]))
            dequantized.append(dataclasses.replace(w, data=dequantize(blocks, gq)
                                                   .reshape(w.shape).astype(np.float32)))
        else:
            quantized.append(w)
            dequantized.append(w)
    ref = logits(Model.from_config(model_config(hf), dequantized))
    np.testing.assert_allclose(logits(Model.from_config(model_config(hf), quantized)), ref,
                               atol=1e-4, rtol=0)
    bf16 = logits(Model.from_config(model_config(hf), quantized, dtype="bfloat16"))
    assert np.abs(bf16 - ref).max() < 0.05 * np.abs(ref).max()


def test_tied_embedding_when_reuploaded_as_float_then_output_projection_uses_new_values():
    """A quantized tied table also serves as the output projection; a later float upload of
    the table must replace both uses."""
    hf = tiny_hf_model("llama")
    weights = hf_weights(hf)
    embed = next(w for w in weights if w.name == "model.embed_tokens.weight")
    blocks = quantize(np.flip(embed.data, 0).copy(), GGMLQuantizationType.Q8_0)
    model = Model.from_config(model_config(hf), weights)
    model.set_weight(embed.name, blocks, DataType.Q8_0, embed.shape)
    model.set_weight(embed.name, embed.data, embed.dtype, embed.shape)
    np.testing.assert_array_equal(logits(model), logits(Model.from_config(model_config(hf),
                                                                          weights)))
