"""Tiny random checkpoints for tests (no model hub is reachable).

write_tiny_tokenizer  a byte-level BPE tokenizer.json + tokenizer_config.json (tokenizers only)
write_tiny_hf         a Qwen2 (biases, untied) or Llama (tied) directory from numpy weights
                      (safetensors.numpy, no torch): the loader's tests
build_tiny_model      the same shapes built by transformers and saved with save_pretrained:
                      the parity tests (needs torch + transformers)
write_tiny_gguf       a GGUF of the same weights as llama.cpp's converter writes them
                      (llama q/k rows permuted, optional quantized projections)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! How are you today? I am fine, thank you.",
    "def add(a, b):\n    return a + b\n",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and more numbers.",
    "Unicode: héllo wörld, naïve café, 你好世界, emoji 🤗.",
] * 20

ARCHS = {
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "tie_word_embeddings": False},
    "llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "tie_word_embeddings": True, "attention_bias": False},
}


QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_tiny_tokenizer(path: Path, vocab_size: int = 320, style: str = "gpt2") -> int:
    """Trains a byte-level BPE on a small corpus; returns its vocabulary size.
    style: "gpt2" (GPT-2/SmolLM split) or "qwen2" (Qwen2's split regex + NFC, as its
    tokenizer.json, which transformers 5 rebuilds for qwen2 models whatever the file says)."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "unk_token": None, "chat_template": CHAT_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": TINY["max_position_embeddings"],
    }))
    return tok.get_vocab_size()


def tiny_config(arch: str, vocab_size: int) -> dict:
    eos = SPECIAL_TOKENS.index("<|im_end|>")
    return {**TINY, **ARCHS[arch], "vocab_size": vocab_size, "hidden_act": "silu",
            "bos_token_id": None, "eos_token_id": eos, "torch_dtype": "float32"}


def random_weights(cfg: dict, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Hugging Face-named weights with the shapes of cfg."""
    rng = np.random.default_rng(seed)
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = h // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        shapes |= {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                   p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
                   p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
                   p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                   p + "mlp.down_proj.weight": (h, i)}
        if cfg["model_type"] == "qwen2":
            shapes |= {p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                       p + "self_attn.v_proj.bias": (kv,)}
    out = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            w = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            w = 0.05 * rng.standard_normal(shape)
        out[name] = w.astype(np.float32)
    if dtype == "bfloat16":
        return {k: (v.view(np.uint32) >> 16).astype(np.uint16) for k, v in out.items()}
    return {k: v.astype(dtype) for k, v in out.items()}


def write_tiny_hf(path: Path, arch: str, *, shards: int = 1, seed: int = 0,
                  dtype: str = "float32") -> Path:
    """A checkpoint directory from numpy (no torch). dtype: float32 | float16 | bfloat16
    (bfloat16 weights are written with the safetensors header dtype BF16)."""
    vocab = write_tiny_tokenizer(path, style=arch if arch == "qwen2" else "gpt2")
    cfg = tiny_config(arch, vocab)
    (path / "config.json").write_text(json.dumps(cfg))
    weights = random_weights(cfg, seed, dtype)
    st_dtype = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[dtype]
    names = list(weights)
    if shards == 1:
        write_safetensors(path / "model.safetensors", weights, st_dtype)
        return path
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[s::shards]}
        write_safetensors(path / file, part, st_dtype)
        weight_map |= dict.fromkeys(part, file)
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))
    return path


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Writes the format by hand (8-byte header length, JSON header, data), so BF16 bits
    can be stored as uint16 without torch."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for b in blobs:
            f.write(b)


def build_tiny_model(path: Path, arch: str, *, seed: int = 0) -> Path:
    """A tiny random model built and saved by transformers (f32 safetensors)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    vocab = write_tiny_tokenizer(path, style=arch if arch == "qwen2" else "gpt2")
    cfg = tiny_config(arch, vocab)
    config = AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "architectures"})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # larger than the default init, so logits are not all near zero
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
    model.save_pretrained(path, safe_serialization=True)
    return path


def _permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of llama q/k rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


_HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def gguf_name(hf: str) -> str:
    glob = {"model.embed_tokens.weight": "token_embd.weight",
            "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf in glob:
        return glob[hf]
    _, _, n, *mod, kind = hf.split(".")
    return f"blk.{n}.{_HF_TO_GGUF['.'.join(mod)]}.{kind}"


def write_tiny_gguf(path: Path, arch: str, *, seed: int = 0, quant: str | None = None,
                    tokenizer_dir: Path | None = None) -> dict[str, np.ndarray]:
    """A GGUF of random f32 weights; quant (e.g. "Q8_0", "Q4_0", "Q4_1", "Q4_K") quantizes
    the 2-D projection weights. Returns the Hugging Face-named f32 weights it holds
    (unpermuted, before quantization)."""
    import gguf
    from gguf.quants import quantize

    tok_dir = tokenizer_dir or path.parent / (path.stem + "-tokenizer")
    vocab = write_tiny_tokenizer(tok_dir, style=arch if arch == "qwen2" else "gpt2")
    cfg = tiny_config(arch, vocab)
    weights = random_weights(cfg, seed)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    _add_gguf_tokenizer(w, tok_dir, "qwen2" if arch == "qwen2" else "smollm")
    heads = {"q_proj": cfg["num_attention_heads"], "k_proj": cfg["num_key_value_heads"]}
    for hf, a in weights.items():
        proj = hf.split(".")[-2]
        if arch == "llama" and proj in heads:
            a = _permute_rows(a, heads[proj])
        if quant is not None and a.ndim == 2 and "proj" in hf:
            qtype = gguf.GGMLQuantizationType[quant]
            w.add_tensor(gguf_name(hf), quantize(a, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(gguf_name(hf), a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return weights


def _add_gguf_tokenizer(w, tok_dir: Path, pre: str) -> None:  # noqa: ANN001 - GGUFWriter
    tj = json.loads((tok_dir / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL_TOKENS else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
