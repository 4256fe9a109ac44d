"""load_checkpoint on GGUF files: metadata, pass-through/quantized/dequantized tensors,
llama q/k un-permutation, and malformed files."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize, quantize

from llaisys import DataType
from llaisys.models import CheckpointError, UnsupportedModelError, load_checkpoint
from llaisys.models.gguf_reader import read_gguf
from test.utils.tiny_models import TINY, write_tiny_gguf

Q = gguf.GGMLQuantizationType


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_f32_gguf_when_loaded_then_weights_equal_unpermuted_hf_weights(tmp_path: Path, arch: str):
    ref = write_tiny_gguf(tmp_path / "m.gguf", arch)
    ck = load_checkpoint(tmp_path / "m.gguf")
    got = {w.name: w for w in ck.iter_weights()}
    assert set(got) == set(ref)
    for name, w in got.items():
        assert w.dtype == DataType.F32 and w.shape == ref[name].shape
        assert w.data.flags.c_contiguous
        np.testing.assert_array_equal(w.data, ref[name], err_msg=name)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_gguf_metadata_when_loaded_then_config_matches(tmp_path: Path, arch: str):
    write_tiny_gguf(tmp_path / "m.gguf", arch)
    c = load_checkpoint(tmp_path / "m.gguf").config
    assert c.architecture == arch
    assert (c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim) == \
        (64, 2, 4, 2, 16)
    assert (c.intermediate_size, c.max_position) == (128, TINY["max_position_embeddings"])
    assert c.attention_bias == (arch == "qwen2")  # from the bias tensors
    assert c.tie_word_embeddings == (arch == "llama")  # no output.weight
    assert c.rope_theta == 10000.0 and c.rms_norm_eps == pytest.approx(1e-6)
    assert c.eos_token_ids == [2] and c.dtype == DataType.F32


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("quant", ["Q8_0", "Q4_0", "Q4_1"])
def test_quantized_gguf_when_loaded_then_raw_blocks_dequantize_to_reference(
        tmp_path: Path, arch: str, quant: str):
    ref = write_tiny_gguf(tmp_path / "m.gguf", arch, quant=quant)
    qtype = Q[quant]
    for w in load_checkpoint(tmp_path / "m.gguf").iter_weights():
        if w.name.endswith("proj.weight"):
            assert w.dtype == DataType[quant] and w.data.dtype == np.uint8
            rows, cols = w.shape
            assert w.data.shape == (rows, cols // 32 * gguf.GGML_QUANT_SIZES[qtype][1])
            expected = dequantize(quantize(ref[w.name], qtype), qtype)
            np.testing.assert_array_equal(dequantize(w.data, qtype), expected, err_msg=w.name)
        else:
            assert w.dtype == DataType.F32


def test_other_quant_type_when_loaded_then_dequantized_to_f32(tmp_path: Path):
    ref = write_tiny_gguf(tmp_path / "m.gguf", "llama", quant="Q5_0")
    for w in load_checkpoint(tmp_path / "m.gguf").iter_weights():
        assert w.dtype == DataType.F32 and w.data.dtype == np.float32
        if w.name.endswith("proj.weight"):
            expected = dequantize(quantize(ref[w.name], Q.Q5_0), Q.Q5_0)
            np.testing.assert_array_equal(w.data, expected, err_msg=w.name)


def test_gguf_when_read_then_metadata_equals_gguf_package_reader(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "qwen2", quant="Q8_0")
    ours = read_gguf(tmp_path / "m.gguf")
    theirs = gguf.GGUFReader(tmp_path / "m.gguf")
    for key, field in theirs.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        assert ours.metadata[key] == (pytest.approx(value) if isinstance(value, float)
                                      else value), key
    for t in theirs.tensors:
        mine = ours.tensors[t.name]
        assert mine.type == t.tensor_type
        assert mine.shape == tuple(int(d) for d in reversed(t.shape))
        np.testing.assert_array_equal(mine.data.reshape(-1), t.data.reshape(-1).view(np.uint8))


def test_gguf_tokenizer_when_loaded_then_encodes_like_hf_dir_tokenizer(tmp_path: Path):
    from llaisys.models import Tokenizer

    write_tiny_gguf(tmp_path / "m.gguf", "llama", tokenizer_dir=tmp_path / "tok")
    from_gguf = load_checkpoint(tmp_path / "m.gguf").tokenizer()
    from_dir = Tokenizer.from_hf_dir(tmp_path / "tok")
    for text in ["Hello world!", "héllo 你好 🤗", "<|im_start|>user\nhi<|im_end|>\n", "  a\n\n b"]:
        assert from_gguf.encode(text) == from_dir.encode(text), text
    msgs = [{"role": "user", "content": "hi"}]
    assert from_gguf.apply_chat_template(msgs) == from_dir.apply_chat_template(msgs)


# ------------------------------------------------------------------ errors --

def test_gguf_merges_of_unknown_tokens_when_tokenizer_built_then_checkpoint_error():
    from llaisys.models import Tokenizer

    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["a", "b", "ab"],
            "tokenizer.ggml.merges": ["a c"]}  # "c" is no token
    with pytest.raises(CheckpointError, match="inconsistent"):
        Tokenizer.from_gguf(meta)


def _tensor_info_offset(path: Path, name: str) -> int:
    """Byte offset of the u32 ggml type of tensor `name` in the tensor infos."""
    data = path.read_bytes()
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.index(key) + len(key)
    (n_dims,) = struct.unpack_from("<I", data, at)
    return at + 4 + 8 * n_dims


def test_bad_magic_when_loaded_then_error_names_file(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "llama")
    data = bytearray((tmp_path / "m.gguf").read_bytes())
    data[:4] = b"GGML"
    (tmp_path / "m.gguf").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"m.gguf: not a GGUF file \(magic b'GGML'\)"):
        load_checkpoint(tmp_path / "m.gguf")


def test_tiny_file_when_loaded_then_error(tmp_path: Path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(CheckpointError, match="not a GGUF file"):
        load_checkpoint(tmp_path / "m.gguf")


def test_truncated_tensor_data_when_loaded_then_error_names_tensor(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "llama")
    f = tmp_path / "m.gguf"
    f.write_bytes(f.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match=r"m.gguf: truncated file: tensor '.+'"):
        load_checkpoint(f)


def test_truncated_metadata_when_loaded_then_error(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "llama")
    f = tmp_path / "m.gguf"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated GGUF file while reading"):
        load_checkpoint(f)


def test_unknown_tensor_type_when_loaded_then_error_names_tensor(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "llama")
    f = tmp_path / "m.gguf"
    data = bytearray(f.read_bytes())
    struct.pack_into("<I", data, _tensor_info_offset(f, "blk.1.ffn_up.weight"), 99)
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="'blk.1.ffn_up.weight' has unknown ggml type 99"):
        load_checkpoint(f)


def test_undequantizable_tensor_type_when_weights_read_then_error_names_tensor(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "llama")
    f = tmp_path / "m.gguf"
    data = bytearray(f.read_bytes())
    # F32 -> I32: same size, a type no weight can have
    struct.pack_into("<I", data, _tensor_info_offset(f, "blk.0.ffn_norm.weight"), Q.I32)
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="'blk.0.ffn_norm.weight' has type I32"):
        list(load_checkpoint(f).iter_weights())


def test_unsupported_gguf_architecture_when_loaded_then_error_lists_supported(tmp_path: Path):
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "gpt2")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UnsupportedModelError, match="'gpt2'; supported: qwen2.*llama"):
        load_checkpoint(tmp_path / "m.gguf")


def test_missing_gguf_tensor_when_loaded_then_error_names_weight(tmp_path: Path):
    write_tiny_gguf(tmp_path / "m.gguf", "qwen2")
    f = tmp_path / "m.gguf"
    f.write_bytes(f.read_bytes().replace(b"output_norm.weight", b"output_nxrm.weight"))
    with pytest.raises(CheckpointError, match="m.gguf: missing weight 'model.norm.weight'"):
        load_checkpoint(f)


# ------------------------------------------------ transformers' GGUF loader --

def test_llama_gguf_when_loaded_then_weights_equal_transformers_gguf_loader(
        tmp_path: Path, hf_required: None):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    write_tiny_gguf(tmp_path / "m.gguf", "llama", quant="Q8_0")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="m.gguf",
                                              dtype=torch.float32).state_dict()
    for w in load_checkpoint(tmp_path / "m.gguf").iter_weights():
        ours = dequantize(w.data, Q.Q8_0) if w.dtype == DataType.Q8_0 else w.data
        np.testing.assert_array_equal(ours, hf[w.name].numpy(), err_msg=w.name)
