"""Model.load over the loaders: a Hugging Face directory and a GGUF file holding the same
weights decode alike, with their tokenizer attached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llaisys import DataType
from llaisys.models import Model
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.tiny_models import write_tiny_gguf, write_tiny_hf


def logits(model: Model, text: str) -> np.ndarray:
    ids = model.tokenizer.encode(text)
    return CacheRunner(model, "slot").decode([SeqChunk(0, ids, outputs="all")]).logits


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_hf_dir_and_gguf_of_same_weights_when_loaded_then_same_logits(tmp_path: Path, arch):
    hf = Model.load(write_tiny_hf(tmp_path / "hf", arch))
    gguf_path = tmp_path / "tiny.gguf"
    write_tiny_gguf(gguf_path, arch)
    gguf = Model.load(gguf_path)
    assert hf.config.tie_word_embeddings == (arch == "llama")
    text = "hello world, naïve café"
    np.testing.assert_allclose(logits(gguf, text), logits(hf, text), atol=1e-5, rtol=0)


def test_bf16_checkpoint_when_loaded_as_f32_then_close_to_bf16_run(tmp_path: Path):
    path = write_tiny_hf(tmp_path / "hf", "qwen2", dtype="bfloat16")
    as_bf16, as_f32 = Model.load(path), Model.load(path, dtype="float32")
    assert (as_bf16.dtype, as_f32.dtype) == (DataType.BF16, DataType.F32)
    assert as_f32.kv_bytes_per_token() == 2 * as_bf16.kv_bytes_per_token()
    ref, got = logits(as_f32, "hello"), logits(as_bf16, "hello")
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max() + 1e-2


def test_unknown_dtype_when_loading_then_value_error(tmp_path: Path):
    with pytest.raises(ValueError, match="dtype"):
        Model.load(write_tiny_hf(tmp_path / "hf", "llama"), dtype="int8")
