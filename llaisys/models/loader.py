"""load_checkpoint: a Hugging Face directory or a GGUF file -> config, weights, tokenizer.

Weights come out under their Hugging Face names as views of memory-mapped files
(float32/float16, BF16 as uint16 bits, Q8_0/Q4_0/Q4_1 as raw blocks). Every weight the
config requires is checked for presence and shape when the checkpoint is opened.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from ..tensor import DataType
from .config import (
    CheckpointError,
    ModelConfig,
    UnsupportedModelError,
    config_ids,
    read_json_object,
)
from .gguf_reader import GgufFile, GgufTensor, read_gguf
from .registry import adapter_for_gguf, adapter_for_hf, gguf_to_hf_name
from .safetensors_reader import read_safetensors
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class WeightTensor:
    name: str  # Hugging Face name
    data: np.ndarray  # contiguous host memory in dtype (raw uint8 blocks when quantized)
    dtype: DataType
    shape: tuple[int, ...]  # logical shape ([rows, cols] for quantized blocks)


def drop_mapped_pages(a: np.ndarray) -> None:
    """Unmaps the whole pages of a read-only file mapping that a covers (a no-op for arrays
    that do not view one). Reading a again faults the pages back in from the file."""
    base = a.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or base.closed:
        return
    start = a.ctypes.data - np.frombuffer(base, np.uint8).ctypes.data
    lo = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    hi = (start + a.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if hi > lo:
        base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def expected_weights(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight the core needs for this config, with its shape."""
    h, v, i = config.hidden_size, config.vocab_size, config.intermediate_size
    q, kv = config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (v, h)
    for n in range(config.num_layers):
        p = f"model.layers.{n}."
        shapes |= {
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, q),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
        }
        if config.attention_bias:
            shapes |= {p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                       p + "self_attn.v_proj.bias": (kv,)}
    return shapes


class Checkpoint:
    """An opened checkpoint: its config, lazily produced weights and its tokenizer."""

    def __init__(self, path: Path, config: ModelConfig,
                 weights: Callable[[], Iterator[WeightTensor]],
                 tokenizer: Callable[[], Tokenizer]):
        self.path = path
        self.config = config
        self._weights = weights
        self._tokenizer = tokenizer

    def iter_weights(self) -> Iterator[WeightTensor]:
        """Weights one at a time; once the consumer asks for the next one, the pages of the
        last one's file mapping leave this process (the core holds its own copy by then), so
        loading peaks at the loaded weights plus one tensor instead of twice the model."""
        for w in self._weights():
            yield w
            drop_mapped_pages(w.data)

    def tokenizer(self) -> Tokenizer:
        return self._tokenizer()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Opens a Hugging Face directory (config.json + safetensors) or a .gguf file."""
    path = Path(path)
    if path.is_dir():
        return _load_hf(path)
    if path.is_file():
        return _load_gguf(path)
    raise CheckpointError(f"{path}: no such model directory or GGUF file")


def _check_shapes(config: ModelConfig, shapes: dict[str, tuple[int, ...]],
                  where: Callable[[str], str]) -> None:
    last = f"model.layers.{config.num_layers - 1}.input_layernorm.weight"
    if last not in shapes:  # before listing every layer's weights: num_layers may be huge
        raise CheckpointError(f"{where(last)}: missing weight {last!r} (the config has "
                              f"{config.num_layers} layers)")
    for name, shape in expected_weights(config).items():
        if name not in shapes:
            raise CheckpointError(f"{where(name)}: missing weight {name!r}")
        if shapes[name] != shape:
            raise CheckpointError(f"{where(name)}: weight {name!r} has shape "
                                  f"{list(shapes[name])}, the config needs {list(shape)}")


# ------------------------------------------------------------ Hugging Face --

def _load_hf(path: Path) -> Checkpoint:
    cfg = read_json_object(path / "config.json")
    adapter = adapter_for_hf(cfg)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index).get("weight_map", {})
        if not isinstance(weight_map, dict) or not all(
                isinstance(f, str) for f in weight_map.values()):
            raise CheckpointError(f"{index}: weight_map must map names to file names")
        files = sorted(set(weight_map.values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise CheckpointError(f"{path}: no model.safetensors or model.safetensors.index.json")
    entries, file_of = {}, {}
    for file in files:
        if not (path / file).is_file():
            raise CheckpointError(f"{path / file}: missing shard (named by {index.name})")
        for name, entry in read_safetensors(path / file).items():
            entries[name], file_of[name] = entry, path / file
    embed = entries.get("model.embed_tokens.weight")
    if embed is None:
        raise CheckpointError(f"{path}: missing weight 'model.embed_tokens.weight'")
    gen_file = path / "generation_config.json"
    if gen_file.is_file():  # generation may stop on more tokens than config.json names
        eos = (config_ids("config.json", "eos_token_id", cfg.get("eos_token_id"))
               + config_ids(str(gen_file), "eos_token_id",
                            read_json_object(gen_file).get("eos_token_id")))
        cfg = cfg | {"eos_token_id": list(dict.fromkeys(eos))}
    config = ModelConfig.from_hf(cfg, architecture=adapter.name,
                                 attention_bias=adapter.attention_bias(cfg), dtype=embed.dtype)
    _check_shapes(config, {n: e.shape for n, e in entries.items()},
                  lambda name: str(file_of.get(name, path)))

    def weights() -> Iterator[WeightTensor]:
        for name in expected_weights(config):
            e = entries[name]
            yield WeightTensor(name, e.data, e.dtype, e.shape)

    return Checkpoint(path, config, weights,
                      lambda: Tokenizer.from_hf_dir(path, config.eos_token_ids))


# -------------------------------------------------------------------- GGUF --

_Q = GGMLQuantizationType
_PASS_THROUGH = {_Q.F32: (DataType.F32, "<f4"), _Q.F16: (DataType.F16, "<f2"),
                 _Q.BF16: (DataType.BF16, "<u2")}
_KEPT_QUANTIZED = {_Q.Q8_0: DataType.Q8_0, _Q.Q4_0: DataType.Q4_0, _Q.Q4_1: DataType.Q4_1}


def _unpermute_rows(a: np.ndarray, n_head: int) -> np.ndarray:
    """Undoes llama.cpp's q/k row permutation (interleaved rope pairs -> halves), as
    transformers does. Rows move whole, so raw quantized blocks permute too."""
    rows = a.shape[0]
    return np.ascontiguousarray(
        a.reshape(n_head, rows // n_head // 2, 2, *a.shape[1:]).swapaxes(1, 2)
    ).reshape(a.shape)


def _gguf_weight(g: GgufFile, t: GgufTensor, name: str, config: ModelConfig,
                 permute: bool) -> WeightTensor:
    if t.type in _PASS_THROUGH:
        dtype, np_dtype = _PASS_THROUGH[t.type]
        data = t.data.view(np_dtype).reshape(t.shape)
    elif t.type in _KEPT_QUANTIZED:
        dtype, data = _KEPT_QUANTIZED[t.type], t.data
    else:
        try:
            data = dequantize(t.data, t.type).reshape(t.shape)
        except NotImplementedError:
            raise CheckpointError(f"{g.path}: tensor {t.name!r} has type {t.type.name}, "
                                  f"which cannot be dequantized") from None
        dtype = DataType.F32
    if permute and (".q_proj." in name or ".k_proj." in name):
        data = _unpermute_rows(
            data, config.num_heads if ".q_proj." in name else config.num_kv_heads)
    return WeightTensor(name, data, dtype, t.shape)


def _load_gguf(path: Path) -> Checkpoint:
    g = read_gguf(path)
    arch = g.metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise CheckpointError(f"{path}: GGUF metadata: general.architecture is missing or "
                              f"not a string ({arch!r})")
    try:
        adapter = adapter_for_gguf(arch)
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"{path}: {e}") from None
    by_hf = {hf: t for t in g.tensors.values() if (hf := gguf_to_hf_name(t.name)) is not None}
    embed = g.tensors.get("token_embd.weight")
    if embed is None:
        raise CheckpointError(f"{path}: missing tensor 'token_embd.weight'")
    config = ModelConfig.from_gguf(
        g.metadata, architecture=adapter.name,
        attention_bias="blk.0.attn_q.bias" in g.tensors,
        tie_word_embeddings="output.weight" not in g.tensors,
        dtype=_PASS_THROUGH[embed.type][0] if embed.type in (_Q.F16, _Q.BF16) else DataType.F32)
    _check_shapes(config, {n: t.shape for n, t in by_hf.items()}, lambda name: str(path))

    def weights() -> Iterator[WeightTensor]:
        for name in expected_weights(config):
            yield _gguf_weight(g, by_hf[name], name, config, adapter.gguf_permutes_qk)

    return Checkpoint(path, config, weights, lambda: Tokenizer.from_gguf(g.metadata))
