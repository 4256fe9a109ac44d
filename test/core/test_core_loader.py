"""load_checkpoint on Hugging Face directories (safetensors, single and sharded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llaisys import DataType
from llaisys.models import CheckpointError, UnsupportedModelError, load_checkpoint
from test.utils.tiny_models import random_weights, tiny_config, write_safetensors, write_tiny_hf


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("shards", [1, 3])
def test_tiny_checkpoint_when_loaded_then_weights_equal_written(tmp_path: Path, arch: str,
                                                                 shards: int):
    write_tiny_hf(tmp_path, arch, shards=shards, seed=1)
    ck = load_checkpoint(tmp_path)
    ref = random_weights(tiny_config(arch, ck.config.vocab_size), seed=1)
    got = {w.name: w for w in ck.iter_weights()}
    assert set(got) == set(ref)
    for name, w in got.items():
        assert w.dtype == DataType.F32 and w.shape == ref[name].shape
        assert w.data.flags.c_contiguous and not w.data.flags.writeable  # a memory map view
        np.testing.assert_array_equal(w.data, ref[name])
    assert ck.config.architecture == arch
    assert ck.config.attention_bias == (arch == "qwen2")
    assert ck.config.tie_word_embeddings == (arch == "llama")


@pytest.mark.parametrize("dtype,expected", [("float16", DataType.F16),
                                            ("bfloat16", DataType.BF16)])
def test_half_checkpoint_when_loaded_then_dtype_and_bits_kept(tmp_path: Path, dtype: str,
                                                              expected: DataType):
    write_tiny_hf(tmp_path, "qwen2", dtype=dtype)
    ck = load_checkpoint(tmp_path)
    ref = random_weights(tiny_config("qwen2", ck.config.vocab_size), dtype=dtype)
    assert ck.config.dtype == expected
    for w in ck.iter_weights():
        assert w.dtype == expected
        np.testing.assert_array_equal(w.data, ref[w.name])
        assert w.data.dtype == (np.uint16 if expected == DataType.BF16 else np.float16)


def test_generation_config_when_loaded_then_eos_ids_merged(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}))
    ck = load_checkpoint(tmp_path)
    assert ck.config.eos_token_ids == [2, 0]
    assert ck.tokenizer().eos_token_ids == [2, 0]


def test_tied_checkpoint_with_lm_head_when_loaded_then_lm_head_not_yielded(tmp_path: Path):
    write_tiny_hf(tmp_path, "llama")
    cfg = json.loads((tmp_path / "config.json").read_text())
    weights = random_weights(cfg)
    weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    write_safetensors(tmp_path / "model.safetensors", weights, "F32")
    ck = load_checkpoint(tmp_path)
    assert "lm_head.weight" not in {w.name for w in ck.iter_weights()}


def test_missing_path_when_loaded_then_error_names_it(tmp_path: Path):
    with pytest.raises(CheckpointError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere")


def test_missing_config_when_loaded_then_error_names_file(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(tmp_path)


def test_no_safetensors_when_loaded_then_error(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_missing_shard_when_loaded_then_error_names_shard(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2", shards=2)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors.*missing shard"):
        load_checkpoint(tmp_path)


def test_truncated_safetensors_when_loaded_then_error_names_file_and_tensor(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    f = tmp_path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model.safetensors: truncated file: tensor '.+'"):
        load_checkpoint(tmp_path)


def test_truncated_header_when_loaded_then_error(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    f = tmp_path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated safetensors file"):
        load_checkpoint(tmp_path)


def test_malformed_header_when_loaded_then_error(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    f = tmp_path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8] = ord("!")
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="malformed safetensors header"):
        load_checkpoint(tmp_path)


def test_unsupported_tensor_dtype_when_loaded_then_error_names_tensor(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    write_safetensors(tmp_path / "model.safetensors", {"x": np.zeros(4, np.int64)}, "I64")
    with pytest.raises(CheckpointError, match="'x' has unsupported dtype 'I64'"):
        load_checkpoint(tmp_path)


def test_missing_weight_when_loaded_then_error_names_weight(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    cfg = json.loads((tmp_path / "config.json").read_text())
    weights = random_weights(cfg)
    del weights["model.layers.1.mlp.up_proj.weight"]
    write_safetensors(tmp_path / "model.safetensors", weights, "F32")
    with pytest.raises(CheckpointError, match="missing weight 'model.layers.1.mlp.up_proj"):
        load_checkpoint(tmp_path)


def test_shape_mismatch_when_loaded_then_error_names_file_and_weight(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg | {"intermediate_size": 96}))
    with pytest.raises(CheckpointError,
                       match=r"model.safetensors: weight 'model.layers.0.mlp.gate_proj.weight' "
                             r"has shape \[128, 64\], the config needs \[96, 64\]"):
        load_checkpoint(tmp_path)


def test_unsupported_architecture_when_loaded_then_error_lists_supported(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(
        json.dumps(cfg | {"architectures": ["GPTNeoXForCausalLM"]}))
    with pytest.raises(UnsupportedModelError, match="GPTNeoXForCausalLM.*qwen2.*llama"):
        load_checkpoint(tmp_path)


def test_malformed_config_when_loaded_then_error_names_file(tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: malformed JSON"):
        load_checkpoint(tmp_path)


def _mapping_rss_kib(address: int) -> int:
    """Resident KiB of the mapping of this process that holds address (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "Rss:":
            return int(line.split()[1])
    raise AssertionError("address not mapped")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux smaps")
def test_mapped_weight_when_iterated_past_then_its_pages_leave_rss_and_data_reads_back(
        tmp_path: Path):
    write_tiny_hf(tmp_path, "qwen2", seed=3)
    ref = random_weights(tiny_config("qwen2", load_checkpoint(tmp_path).config.vocab_size),
                         seed=3)
    ck = load_checkpoint(tmp_path)
    it = ck.iter_weights()
    first = next(it)
    assert float(first.data.sum()) == pytest.approx(float(ref[first.name].sum()))  # touch
    touched = _mapping_rss_kib(first.data.ctypes.data)
    next(it)  # the consumer moved on: the first weight's whole pages are dropped
    assert _mapping_rss_kib(first.data.ctypes.data) < touched
    np.testing.assert_array_equal(first.data, ref[first.name])
