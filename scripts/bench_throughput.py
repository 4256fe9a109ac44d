#!/usr/bin/env python3
"""Offline throughput, nano-vllm's workload: seeded random token-id prompts, input lengths
U[a, b], output lengths U[c, d], ignore_eos, all submitted at once.

    python scripts/bench_throughput.py                       # default model, 32 seqs
    python scripts/bench_throughput.py --peer hf --threads 2 # and transformers, same prompts

--peer hf runs transformers' batched generate (fp32, bf16 with --device nvidia; left
padding; batches of --hf-batch-size prompts sorted by output length, each generating its
longest request)
on the same prompts in the same process, and credits it only the requested output
tokens: the work delivered is the same, static batching's padding is its cost.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="HF directory or .gguf (default: SmolLM2 GGUF)")
    p.add_argument("--device", choices=["cpu", "nvidia"], default="cpu")
    p.add_argument("--dtype", default=None, help="llaisys compute dtype (default: the model's)")
    p.add_argument("--num-seqs", type=int, default=32)
    p.add_argument("--input-len", type=int, nargs=2, default=[32, 256], metavar=("A", "B"))
    p.add_argument("--output-len", type=int, nargs=2, default=[32, 256], metavar=("C", "D"))
    p.add_argument("--max-num-seqs", type=int, default=None, help="default: --num-seqs")
    p.add_argument("--max-num-batched-tokens", type=int, default=2048)
    p.add_argument("--kv-cache-tokens", type=int, default=None)
    p.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction, default=None,
                   help="default: the engine's (on for nvidia, off for the CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of llaisys and torch (default: all cores)")
    p.add_argument("--peer", choices=["hf"], default=None)
    p.add_argument("--hf-batch-size", type=int, default=None, help="default: --num-seqs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true",
                   help="print the engine's step time split (decode at the largest batch)")
    return p.parse_args()


def workload(args: argparse.Namespace, vocab: int) -> tuple[list[list[int]], list[int]]:
    rng = random.Random(args.seed)
    high = min(10000, vocab - 1)
    prompts = [[rng.randint(0, high) for _ in range(rng.randint(*args.input_len))]
               for _ in range(args.num_seqs)]
    outputs = [rng.randint(*args.output_len) for _ in range(args.num_seqs)]
    return prompts, outputs


def report(name: str, seconds: float, n_in: int, n_out: int) -> tuple[float, float]:
    out_tps, total_tps = n_out / seconds, (n_in + n_out) / seconds
    print(f"{name:8s} {n_in} input + {n_out} output tokens in {seconds:.2f}s: "
          f"output {out_tps:.1f} tok/s, total {total_tps:.1f} tok/s", flush=True)
    return out_tps, total_tps


def run_hf(args, model_path: Path, prompts: list[list[int]], outputs: list[int],
           threads: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    kw = {"gguf_file": model_path.name} if model_path.suffix == ".gguf" else {}
    src = model_path.parent if model_path.suffix == ".gguf" else model_path
    dtype = torch.bfloat16 if args.device == "nvidia" else torch.float32
    hf = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kw).eval()
    device = "cuda" if args.device == "nvidia" else "cpu"
    hf.to(device)
    pad = 0
    order = sorted(range(len(prompts)), key=lambda i: outputs[i])
    size = args.hf_batch_size or len(prompts)
    start = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(order), size):
            batch = order[b:b + size]
            width = max(len(prompts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding
                ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]):] = 1
            new = max(outputs[i] for i in batch)
            hf.generate(ids.to(device), attention_mask=mask.to(device), do_sample=False,
                        max_new_tokens=new, min_new_tokens=new, pad_token_id=pad)
    return time.perf_counter() - start


def main() -> int:
    args = parse_args()
    threads = args.threads or os.cpu_count() or 1
    from llaisys.engine import SamplingParams
    from llaisys.engine.profiler import StepProfiler
    from llaisys.entrypoints import LLM
    from llaisys.models import default_model

    model_path = Path(args.model) if args.model else default_model()
    llm = LLM(str(model_path), device=args.device, dtype=args.dtype, num_threads=threads,
              max_num_seqs=args.max_num_seqs or args.num_seqs,
              max_num_batched_tokens=args.max_num_batched_tokens,
              kv_cache_tokens=args.kv_cache_tokens, async_scheduling=args.async_scheduling)
    prompts, outputs = workload(args, llm.client.engine.model_config.vocab_size)
    params = [SamplingParams(temperature=0.6, ignore_eos=True, max_tokens=n) for n in outputs]
    n_in, n_out = sum(map(len, prompts)), sum(outputs)
    print(f"model {model_path.name}, device {args.device}, threads {threads}, "
          f"{args.num_seqs} seqs, input U{args.input_len}, output U{args.output_len}")
    llm.generate(["Benchmark: "], SamplingParams(max_tokens=4), use_tqdm=False)  # warm-up
    engine = llm.client.engine
    if args.profile:
        engine.profiler = StepProfiler()
    start = time.perf_counter()
    llm.generate(prompts, params, use_tqdm=False)
    ours = report("llaisys", time.perf_counter() - start, n_in, n_out)
    if engine.profiler is not None:
        print(engine.profiler.format_split("decode"))
        print(engine.profiler.format_split("prefill"))
    if args.peer == "hf":
        del llm
        peer = report("hf", run_hf(args, model_path, prompts, outputs, threads), n_in, n_out)
        print(f"ratio llaisys/hf: output {ours[0] / peer[0]:.2f}x, "
              f"total {ours[1] / peer[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
