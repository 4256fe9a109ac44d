#!/usr/bin/env python3
"""GPU benchmarks on the DeepSeek-R1-Distill-Qwen-1.5B shape (random bf16 weights), with
transformers (bf16, same GPU, same process) as the peer and the ratios printed:

  decode      single stream: a 128-token prompt, then 128 greedy tokens (tok/s)
  prefill     8 prompts of 1024 tokens in one call (tok/s and TFLOP/s against the bf16
              GEMM ceiling, measured in the same run with torch.matmul 8192^3)
  throughput  nano-vllm's workload through LLM.generate: 256 sequences, random ids, input
              and output lengths U[100, 1024], temperature 0.6, ignore_eos (output tok/s);
              transformers generates the same prompts with static batching
              (--hf-batch-size prompts at a time, sorted by output length) and is credited
              only the requested tokens.

    python scripts/bench_gpu.py                       # writes the checkpoint once
    python scripts/bench_gpu.py --num-seqs 64 --skip-hf
    python scripts/bench_gpu.py --skip-hf --profile   # + kernel and step-phase profiles

llaisys' decode and prefill figures call Model.decode directly (BLOCK KV, greedy sampling
in the core); throughput runs the whole engine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("/tmp/llaisys-qwen2-1p5b-random"),
                   help="HF directory; written by make_random_checkpoint.py when missing")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--prefill", type=int, nargs=2, default=[8, 1024], metavar=("SEQS", "LEN"))
    p.add_argument("--num-seqs", type=int, default=256)
    p.add_argument("--input-len", type=int, nargs=2, default=[100, 1024], metavar=("A", "B"))
    p.add_argument("--output-len", type=int, nargs=2, default=[100, 1024], metavar=("C", "D"))
    p.add_argument("--hf-batch-size", type=int, default=None, help="default: --num-seqs")
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.5,
                   help="share of the free GPU memory the KV cache takes")
    p.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction, default=None,
                   help="the workload's engine setting (default: the engine's, on for nvidia)")
    p.add_argument("--skip", action="append", default=[],
                   choices=["decode", "prefill", "throughput"])
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--hf-compile", action="store_true",
                   help="also time transformers' single-stream decode with a static cache, "
                        "which its generate compiles (torch.compile, CUDA graphs): a second "
                        "peer for the decode figure (compiling takes a minute or two; "
                        "--skip-hf skips it too)")
    p.add_argument("--profile", action="store_true",
                   help="also profile (torch.profiler): the kernels of 32 single-stream decode "
                        "steps and of one prefill, a 256-sequence decode step, and the "
                        "engine's step phases over the workload")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def sync_time(fn) -> float:
    import torch

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


class Core:
    """Model.decode on a BLOCK cache, greedy sampling in the core."""

    def __init__(self, path: Path, max_seqs: int, ctx: int):
        from llaisys.models import SAMPLING_DTYPE, Model

        self.model = Model.load(path, device="nvidia")
        self.block = 16
        width = -(-ctx // self.block)
        self.kv = self.model.create_kv_cache("block", n_cells=max_seqs * width * self.block,
                                             block_size=self.block)
        self.tables = np.arange(max_seqs * width, dtype=np.int32).reshape(max_seqs, -1)
        self.greedy = np.zeros(max_seqs, dtype=SAMPLING_DTYPE)
        self.greedy["top_p"] = 1.0

    def queue(self, seqs: np.ndarray, tokens, positions, output: np.ndarray | None,
              n_out: int, prev_row: np.ndarray | None = None):
        from llaisys.models import DecodeBatch

        pos = np.asarray(positions, dtype=np.int64)
        slots = self.tables[seqs, pos // self.block].astype(np.int64) * self.block + (
            pos % self.block)
        return self.model.decode_async(self.kv, DecodeBatch(
            tokens=np.asarray(tokens, dtype=np.int64), positions=pos, seq_ids=seqs,
            output=output, prev_row=prev_row, slots=slots,
            block_tables=self.tables[:int(seqs.max()) + 1], sampling=self.greedy[:n_out]))

    def step(self, seqs: np.ndarray, tokens, positions, output: np.ndarray | None,
             n_out: int) -> np.ndarray:
        return self.queue(seqs, tokens, positions, output, n_out).wait().token_ids

    def prefill(self, prompts: np.ndarray, first_seq: int = 0) -> np.ndarray:
        b, n = prompts.shape
        seqs = np.repeat(np.arange(first_seq, first_seq + b, dtype=np.int32), n)
        out = np.zeros(b * n, dtype=np.int8)
        out[n - 1::n] = 1
        return self.step(seqs, prompts.reshape(-1), np.tile(np.arange(n), b), out, b)

    def decode(self, first: np.ndarray, start: int, steps: int, queued: bool = True) -> None:
        """Greedy steps of every sequence. queued: each step is queued before the one before
        it is waited for, its tokens taken from that step's samples on the device (prev_row),
        as the engine's async scheduling does; else each step waits for its ids."""
        seqs = np.arange(len(first), dtype=np.int32)
        out = np.ones(len(first), dtype=np.int8)
        if not queued:
            tok = first
            for i in range(steps):
                tok = self.step(seqs, tok, [start + i] * len(first), out, len(first))
            return
        rows = np.arange(len(first), dtype=np.int32)
        before = None
        for i in range(steps):
            step = self.queue(seqs, first, [start + i] * len(first), out, len(first),
                              None if i == 0 else rows)
            if before is not None:
                before.wait()
            before = step
        before.wait()


class HF:
    def __init__(self, path: Path):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()

    def prefill(self, prompts: np.ndarray):
        with self.torch.no_grad():
            out = self.hf(self.torch.tensor(prompts, device="cuda"), use_cache=True,
                          logits_to_keep=1)
        return out

    def decode(self, prompt: np.ndarray, steps: int) -> None:
        out = self.prefill(prompt[None])
        cache, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
        with self.torch.no_grad():
            for _ in range(steps):
                out = self.hf(tok, past_key_values=cache, use_cache=True)
                cache, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)


def compiled_decode_rate(path: Path, prompt: np.ndarray, steps: int) -> float:
    """transformers' greedy decode with a static cache, which its generate compiles on a GPU
    (not by hand: that broke its cache update under CUDA graphs, docs/gpu_notes.md), on a
    model instance of its own: tokens a second of `steps` new tokens, a 1-token generate
    (the prefill) subtracted."""
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()
    hf.generation_config.cache_implementation = "static"
    ids = torch.tensor(prompt[None], device="cuda")

    def generate(n: int) -> None:
        with torch.no_grad():
            hf.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                        pad_token_id=0)

    for n in (steps, 1, steps):  # compiles the prefill and decode shapes, then warm
        generate(n)
    if not torch._dynamo.utils.counters["stats"]["unique_graphs"]:
        raise RuntimeError("generate ran the static cache uncompiled")
    return (steps - 1) / (sync_time(lambda: generate(steps)) - sync_time(lambda: generate(1)))


def prefill_flops(cfg: dict, seqs: int, length: int) -> float:
    """Matmul and causal attention FLOPs of a prefill (no lm_head but the last rows)."""
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = h // heads
    per_token = 2 * layers * (2 * h * h + 2 * h * kv_heads * d + 3 * h * inter)
    attention = 2 * 2 * layers * heads * d * length * (length + 1) / 2
    return seqs * (per_token * length + attention + 2 * h * cfg["vocab_size"])


def print_kernel_times(fn, rows: int = 12, per: int = 1) -> None:
    """GPU time of each kernel fn launches, largest first (CUPTI sees llaisys' kernels),
    divided by per (the steps fn runs)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        sync_time(fn)
    if per > 1:
        print_step_sequence(prof, per)
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: e.device_time_total, reverse=True)
    total = sum(e.device_time_total for e in events)
    print(f"            kernels: {total / 1e3 / per:.3f} ms of GPU time"
          + (f" a step ({per} steps)" if per > 1 else ""), flush=True)
    for e in events[:rows]:
        print(f"            {e.device_time_total / 1e3 / per:9.3f} ms {e.count // per:6d}x  "
              f"{e.key[:90]}")


def print_step_sequence(prof, steps: int, rows: int = 24) -> None:
    """The first kernels of the last step in launch order, each with the time its end adds
    to the previous kernel's end: with dependent launches a kernel's own duration includes
    its wait for the one before, so the end-to-end increments are what each one costs."""
    from torch.autograd import DeviceType

    kernels = sorted((e for e in prof.events() if e.device_type == DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    per_step = len(kernels) // steps
    last = kernels[len(kernels) - per_step:]
    print(f"            last step: {per_step} kernels, end-to-end increments (us):")
    prev_end = last[0].time_range.start
    for e in last[:rows]:
        print(f"            {e.time_range.end - prev_end:8.2f}  {e.name[:80]}")
        prev_end = e.time_range.end


def gemm_ceiling() -> float:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    t = sync_time(lambda: [a @ b for _ in range(10)]) / 10
    return 2 * 8192 ** 3 / t / 1e12


def ratio_line(name: str, ours: float, peer: float | None, unit: str) -> None:
    extra = f"   transformers {peer:10.1f} {unit}   ratio {ours / peer:6.2f}x" if peer else ""
    print(f"{name:<11} llaisys {ours:10.1f} {unit}{extra}", flush=True)


def bench_core(args, cfg: dict, rng: np.random.Generator) -> None:
    vocab = cfg["vocab_size"]
    seqs, length = args.prefill
    ctx = max(args.prompt_len + args.decode_tokens, length) + 16
    core = Core(args.model, max(seqs, 1), ctx)
    hf = None if args.skip_hf else HF(args.model)
    if "decode" not in args.skip:
        prompt = rng.integers(0, vocab, size=(1, args.prompt_len))
        core.kv.clear()
        first = core.prefill(prompt)
        core.decode(first, args.prompt_len, 8)  # warm-up: graphs captured
        core.kv.clear()
        first = core.prefill(prompt)
        t = sync_time(lambda: core.decode(first, args.prompt_len, args.decode_tokens))
        core.kv.clear()
        first = core.prefill(prompt)
        waited = sync_time(lambda: core.decode(first, args.prompt_len, args.decode_tokens,
                                               queued=False))
        print(f"decode      each step waited for (no prev_row): "
              f"{args.decode_tokens / waited:.1f} tok/s", flush=True)
        peer = None
        if hf:
            hf.decode(prompt[0], 8)
            peer = args.decode_tokens / sync_time(lambda: hf.decode(prompt[0],
                                                                    args.decode_tokens))
        ratio_line("decode", args.decode_tokens / t, peer, "tok/s")
        if hf and args.hf_compile:
            try:
                compiled = compiled_decode_rate(args.model, prompt[0], args.decode_tokens)
                print(f"            transformers, static cache + torch.compile: {compiled:.1f} "
                      f"tok/s (ratio {args.decode_tokens / t / compiled:.2f}x)", flush=True)
            except Exception as e:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
                print(f"            transformers + torch.compile failed: {e!r}"[:300], flush=True)
        if args.profile:  # kernel time against the wall time: the rest is host work
            core.kv.clear()
            first = core.prefill(prompt)
            wall = sync_time(lambda: core.decode(first, args.prompt_len, 32))
            print(f"            32 decode steps: {1e3 * wall / 32:.3f} ms a step (wall)")
            core.kv.clear()
            first = core.prefill(prompt)
            print_kernel_times(lambda: core.decode(first, args.prompt_len, 32), rows=24,
                               per=32)
    if "prefill" not in args.skip:
        prompts = rng.integers(0, vocab, size=(seqs, length))
        core.kv.clear()
        core.prefill(prompts)
        core.kv.clear()
        t = sync_time(lambda: core.prefill(prompts))
        flops = prefill_flops(cfg, seqs, length)
        ceiling = gemm_ceiling()
        peer = None
        if hf:
            hf.prefill(prompts)
            tp = sync_time(lambda: hf.prefill(prompts))
            peer = seqs * length / tp
            print(f"            transformers {flops / tp / 1e12:.0f} TFLOP/s")
        ratio_line("prefill", seqs * length / t, peer, "tok/s")
        print(f"            llaisys {flops / t / 1e12:.0f} TFLOP/s = "
              f"{100 * flops / t / 1e12 / ceiling:.0f}% of the bf16 GEMM ceiling "
              f"({ceiling:.0f} TFLOP/s measured); {1e3 * t:.1f} ms", flush=True)
        if args.profile:
            core.kv.clear()
            print_kernel_times(lambda: core.prefill(prompts))
    if args.profile:
        profile_batch_decode(args, vocab, rng)


def profile_batch_decode(args, vocab: int, rng: np.random.Generator, seqs: int = 256,
                         context: int = 512, steps: int = 8) -> None:
    """Kernels of decode steps at the workload's batch size, each sequence at context keys."""
    core = Core(args.model, seqs, context + steps + 16)
    prompts = rng.integers(0, vocab, size=(seqs, context))
    first = np.concatenate([core.prefill(prompts[i:i + 32], i) for i in range(0, seqs, 32)])
    print(f"decode      {seqs} sequences at {context} keys:", flush=True)
    core.decode(first, context, 2)  # graphs captured
    wall = sync_time(lambda: core.decode(first, context + 2, steps))
    print(f"            {1e3 * wall / steps:.3f} ms a step (wall)")
    print_kernel_times(lambda: core.decode(first, context + 2 + steps, steps), rows=16,
                       per=steps)


def llaisys_generate(args, prompts: list[list[int]], outputs: list[int]) -> float:
    from llaisys.engine import SamplingParams
    from llaisys.entrypoints import LLM

    llm = LLM(str(args.model), device="nvidia", max_num_seqs=args.num_seqs,
              max_num_batched_tokens=args.max_num_batched_tokens,
              max_model_len=args.input_len[1] + args.output_len[1] + 16,
              kv_cache_memory_fraction=args.gpu_memory_utilization,
              async_scheduling=args.async_scheduling)
    params = [SamplingParams(temperature=0.6, ignore_eos=True, max_tokens=n) for n in outputs]
    llm.generate([prompts[0]], SamplingParams(max_tokens=4), use_tqdm=False)  # warm-up
    engine = llm.client.engine
    if args.profile:
        from llaisys.engine.profiler import StepProfiler

        engine.profiler = StepProfiler()
    t = sync_time(lambda: llm.generate(prompts, params, use_tqdm=False))
    if args.profile:
        print_step_phases(engine.profiler)
        engine.profiler = None
    rate = engine_decode_rate(llm, prompts[0][:args.prompt_len], args.decode_tokens)
    print(f"decode      engine (LLM.generate, one request): {rate:.1f} tok/s", flush=True)
    return t


def engine_decode_rate(llm, prompt: list[int], tokens: int) -> float:
    """Single-stream decode through the engine: tokens a second of `tokens` greedy tokens,
    a run of one token (the prefill, a prefix-cache hit after the warm-up) subtracted."""
    from llaisys.engine import SamplingParams

    def run(n: int) -> float:
        params = SamplingParams(temperature=0, ignore_eos=True, max_tokens=n)
        return sync_time(lambda: llm.generate([prompt], params, use_tqdm=False))

    run(8)
    return tokens / (run(tokens + 1) - run(1))


def print_step_phases(profiler) -> None:
    """Seconds of the engine's steps by kind and phase (the core's forward included)."""
    from llaisys.engine.profiler import PHASES

    for kind in ("prefill", "decode"):
        steps = [r for r in profiler.records if r.kind == kind]
        phases = {p: sum(r.seconds.get(p, 0.0) for r in steps) for p in PHASES}
        cells = ", ".join(f"{p} {s:.2f}" for p, s in phases.items())
        print(f"            {kind}: {len(steps)} steps, {sum(phases.values()):.2f} s: {cells}")


def bench_throughput(args, cfg: dict) -> None:
    from scripts.bench_throughput import workload

    prompts, outputs = workload(args, cfg["vocab_size"])
    n_out = sum(outputs)
    t = llaisys_generate(args, prompts, outputs)
    print(f"throughput  {args.num_seqs} seqs, {sum(map(len, prompts))} input + {n_out} output "
          f"tokens: llaisys {t:.1f} s", flush=True)
    peer = None
    if not args.skip_hf:
        tp = sync_time(lambda: hf_static_batches(args.model, prompts, outputs,
                                                 args.hf_batch_size or len(prompts)))
        print(f"            transformers {tp:.1f} s", flush=True)
        peer = n_out / tp
    ratio_line("throughput", n_out / t, peer, "tok/s")


def hf_static_batches(path: Path, prompts: list[list[int]], outputs: list[int],
                      size: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()
    order = sorted(range(len(prompts)), key=lambda i: outputs[i])
    with torch.no_grad():
        for b in range(0, len(order), size):
            batch = order[b:b + size]
            width = max(len(prompts[i]) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding
                ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]):] = 1
            new = max(outputs[i] for i in batch)
            hf.generate(ids.cuda(), attention_mask=mask.cuda(), do_sample=False,
                        max_new_tokens=new, min_new_tokens=new, pad_token_id=0)


def main() -> int:
    args = parse_args()
    if not (args.model / "config.json").is_file():
        print(f"writing {args.model} (once)", flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts/make_random_checkpoint.py"),
                        str(args.model)], check=True)
    import json

    cfg = json.loads((args.model / "config.json").read_text())
    rng = np.random.default_rng(args.seed)
    if not {"decode", "prefill"} <= set(args.skip):
        bench_core(args, cfg, rng)
        import torch

        torch.cuda.empty_cache()
    if "throughput" not in args.skip:
        bench_throughput(args, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
