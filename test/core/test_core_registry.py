"""Architecture registry, adapters and ModelConfig builders."""

from __future__ import annotations

import pytest

from llaisys import DataType
from llaisys.models import (
    ADAPTERS,
    ModelConfig,
    UnsupportedModelError,
    adapter_for_gguf,
    adapter_for_hf,
)
from llaisys.models.config import CheckpointError
from llaisys.models.registry import gguf_to_hf_name

QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1536,
    "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
    "intermediate_size": 8960, "vocab_size": 151936, "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "bos_token_id": 151643, "eos_token_id": 151643,
}


def _from_hf(cfg: dict) -> ModelConfig:
    adapter = adapter_for_hf(cfg)
    return ModelConfig.from_hf(cfg, architecture=adapter.name,
                               attention_bias=adapter.attention_bias(cfg), dtype=DataType.BF16)


def test_qwen2_config_json_when_built_then_matches_fields():
    c = _from_hf(QWEN2)
    assert (c.architecture, c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads) == \
        ("qwen2", 1536, 28, 12, 2)
    assert (c.head_dim, c.intermediate_size, c.vocab_size, c.max_position) == \
        (128, 8960, 151936, 131072)
    assert c.attention_bias and not c.tie_word_embeddings
    assert c.bos_token_id == 151643 and c.eos_token_ids == [151643]
    assert c.dtype == DataType.BF16


def test_llama_config_when_built_then_no_bias_unless_asked():
    llama = QWEN2 | {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    assert _from_hf(llama).architecture == "llama"
    assert not _from_hf(llama).attention_bias
    assert _from_hf(llama | {"attention_bias": True}).attention_bias


def test_config_without_architectures_when_looked_up_then_uses_model_type():
    cfg = {k: v for k, v in QWEN2.items() if k != "architectures"} | {"model_type": "llama"}
    assert adapter_for_hf(cfg) is ADAPTERS["llama"]


def test_config_with_head_dim_when_built_then_head_dim_is_taken():
    assert _from_hf(QWEN2 | {"head_dim": 64}).head_dim == 64


def test_eos_list_when_built_then_all_ids_kept():
    assert _from_hf(QWEN2 | {"eos_token_id": [1, 2]}).eos_token_ids == [1, 2]
    assert _from_hf(QWEN2 | {"eos_token_id": None}).eos_token_ids == []


def test_no_rope_theta_when_built_then_defaults_to_10000():
    cfg = {k: v for k, v in QWEN2.items() if k != "rope_theta"}
    assert _from_hf(cfg).rope_theta == 10000.0


def test_transformers5_rope_parameters_when_built_then_theta_read():
    cfg = {k: v for k, v in QWEN2.items() if k != "rope_theta"}
    cfg["rope_parameters"] = {"rope_theta": 1e6, "rope_type": "default"}
    assert _from_hf(cfg).rope_theta == 1e6


def test_scaled_rope_when_built_then_unsupported_error():
    with pytest.raises(UnsupportedModelError, match="llama3"):
        _from_hf(QWEN2 | {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}})


def test_gelu_activation_when_built_then_unsupported_error():
    with pytest.raises(UnsupportedModelError, match="hidden_act"):
        _from_hf(QWEN2 | {"hidden_act": "gelu"})


def test_missing_key_when_built_then_checkpoint_error_names_it():
    cfg = {k: v for k, v in QWEN2.items() if k != "intermediate_size"}
    with pytest.raises(CheckpointError, match="intermediate_size"):
        _from_hf(cfg)


def test_heads_not_multiple_of_kv_heads_when_built_then_error():
    with pytest.raises(CheckpointError, match="num_kv_heads"):
        _from_hf(QWEN2 | {"num_key_value_heads": 5})


def test_unknown_architecture_when_looked_up_then_error_lists_supported():
    with pytest.raises(UnsupportedModelError, match="MistralForCausalLM") as e:
        adapter_for_hf({"architectures": ["MistralForCausalLM"]})
    assert "qwen2" in str(e.value) and "llama" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_gguf_architecture_when_looked_up_then_error_lists_supported():
    with pytest.raises(UnsupportedModelError, match="'gpt2'.*qwen2.*llama"):
        adapter_for_gguf("gpt2")


def test_gguf_architectures_when_looked_up_then_adapters_found():
    assert adapter_for_gguf("qwen2").name == "qwen2"
    assert adapter_for_gguf("llama").gguf_permutes_qk
    assert not adapter_for_gguf("qwen2").gguf_permutes_qk


@pytest.mark.parametrize("gguf,hf", [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
    ("blk.11.attn_k.weight", "model.layers.11.self_attn.k_proj.weight"),
    ("blk.3.attn_v.bias", "model.layers.3.self_attn.v_proj.bias"),
    ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
    ("blk.2.attn_output.weight", "model.layers.2.self_attn.o_proj.weight"),
    ("blk.2.ffn_gate.weight", "model.layers.2.mlp.gate_proj.weight"),
    ("blk.2.ffn_up.weight", "model.layers.2.mlp.up_proj.weight"),
    ("blk.2.ffn_down.weight", "model.layers.2.mlp.down_proj.weight"),
    ("blk.29.attn_norm.weight", "model.layers.29.input_layernorm.weight"),
    ("blk.29.ffn_norm.weight", "model.layers.29.post_attention_layernorm.weight"),
])
def test_gguf_tensor_name_when_mapped_then_hf_name(gguf: str, hf: str):
    assert gguf_to_hf_name(gguf) == hf


def test_unused_gguf_tensor_when_mapped_then_none():
    assert gguf_to_hf_name("rope_freqs.weight") is None
    assert gguf_to_hf_name("blk.0.attn_rot_embd") is None


def test_gguf_metadata_when_built_then_config_matches():
    meta = {
        "general.architecture": "llama", "llama.block_count": 30, "llama.context_length": 8192,
        "llama.embedding_length": 576, "llama.feed_forward_length": 1536,
        "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 1e5,
        "tokenizer.ggml.tokens": ["a"] * 49152, "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }
    c = ModelConfig.from_gguf(meta, architecture="llama", attention_bias=False,
                              tie_word_embeddings=True, dtype=DataType.F32)
    assert (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == \
        (30, 576, 9, 3, 64)
    assert (c.intermediate_size, c.vocab_size, c.max_position) == (1536, 49152, 8192)
    assert (c.rope_theta, c.rms_norm_eps, c.bos_token_id, c.eos_token_ids) == \
        (1e5, 1e-5, 1, [2])
    del meta["llama.rope.freq_base"]
    assert ModelConfig.from_gguf(meta, architecture="llama", attention_bias=False,
                                 tie_word_embeddings=True, dtype=DataType.F32).rope_theta == 1e4
    del meta["llama.block_count"]
    with pytest.raises(CheckpointError, match="llama.block_count"):
        ModelConfig.from_gguf(meta, architecture="llama", attention_bias=False,
                              tie_word_embeddings=True, dtype=DataType.F32)
