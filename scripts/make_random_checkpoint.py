"""Writes a random-weight Hugging Face checkpoint of a given shape, so that benchmarks need
no download. The default shape is DeepSeek-R1-Distill-Qwen-1.5B's (Qwen2, untied, bf16).

    python scripts/make_random_checkpoint.py OUT_DIR [--arch qwen2|llama] [--dtype bf16]
        [--hidden 1536 --intermediate 8960 --layers 28 --heads 12 --kv-heads 2 --vocab 151936]

Weights are N(0, 0.02) (norms 1), written tensor by tensor into one safetensors file by
hand (numpy has no bfloat16), so peak memory is one tensor. The tokenizer is a small
byte-level BPE (ids beyond its vocabulary still embed), so text-level tools work too.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DTYPES = {"bf16": "BF16", "f16": "F16", "f32": "F32"}
TORCH_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


def weight_shapes(a: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    head_dim = a.hidden // a.heads
    q, kv = a.heads * head_dim, a.kv_heads * head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (a.vocab, a.hidden)}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": (a.hidden,),
            p + "self_attn.q_proj.weight": (q, a.hidden),
            p + "self_attn.k_proj.weight": (kv, a.hidden),
            p + "self_attn.v_proj.weight": (kv, a.hidden),
            p + "self_attn.o_proj.weight": (a.hidden, q),
            p + "post_attention_layernorm.weight": (a.hidden,),
            p + "mlp.gate_proj.weight": (a.intermediate, a.hidden),
            p + "mlp.up_proj.weight": (a.intermediate, a.hidden),
            p + "mlp.down_proj.weight": (a.hidden, a.intermediate),
        }
        if a.arch == "qwen2":
            shapes |= {p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                       p + "self_attn.v_proj.bias": (kv,)}
    shapes["model.norm.weight"] = (a.hidden,)
    if not a.tied:
        shapes["lm_head.weight"] = (a.vocab, a.hidden)
    return shapes


def encode(values: np.ndarray, dtype: str) -> bytes:
    if dtype == "f32":
        return values.astype("<f4").tobytes()
    if dtype == "f16":
        return values.astype("<f2").tobytes()
    bits = values.astype("<f4").view("<u4")  # bf16: round to nearest even on the top half
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str,
                      seed: int) -> None:
    itemsize = {"bf16": 2, "f16": 2, "f32": 4}[dtype]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": DTYPES[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for name, shape in shapes.items():
            if name.endswith("norm.weight"):
                values = np.ones(shape, np.float32)
            else:
                values = rng.standard_normal(shape, np.float32) * np.float32(0.02)
            f.write(encode(values, dtype))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--arch", choices=["qwen2", "llama"], default="qwen2")
    ap.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--intermediate", type=int, default=8960)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--max-position", type=int, default=131072)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--tied", action="store_true", help="tie lm_head to the embeddings")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        ap.error("hidden must be a multiple of heads, heads a multiple of kv-heads")

    from test.utils.tiny_models import write_tiny_tokenizer

    a.out.mkdir(parents=True, exist_ok=True)
    write_tiny_tokenizer(a.out, style="qwen2" if a.arch == "qwen2" else "gpt2")
    model_type = {"qwen2": "qwen2", "llama": "llama"}[a.arch]
    arch = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}[a.arch]
    config = {
        "architectures": [arch], "model_type": model_type, "hidden_size": a.hidden,
        "intermediate_size": a.intermediate, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
        "vocab_size": a.vocab, "max_position_embeddings": a.max_position,
        "rms_norm_eps": 1e-6, "rope_theta": a.rope_theta, "tie_word_embeddings": a.tied,
        "torch_dtype": TORCH_DTYPES[a.dtype], "bos_token_id": 0, "eos_token_id": 0,
        "hidden_act": "silu",
    }
    if a.arch == "llama":
        config["attention_bias"] = False
    (a.out / "config.json").write_text(json.dumps(config, indent=2))
    shapes = weight_shapes(a)
    write_safetensors(a.out / "model.safetensors", shapes, a.dtype, a.seed)
    n = sum(int(np.prod(s)) for s in shapes.values())
    print(f"{a.out}: {a.arch}, {n / 1e9:.2f}B parameters, {a.dtype}")


if __name__ == "__main__":
    main()
