#!/usr/bin/env python3
"""Core decode benchmark: prefill of a 128-token prompt, single-stream decode, and batched
decode at 1/8/32 sequences, with peers measured in the same run and ratios printed.

llaisys runs Model.decode directly (BLOCK KV layout as the engine uses it, greedy sampling in
the core), so the figures are the core's, without the engine's scheduling.

    python scripts/bench_decode.py                                   # default SmolLM2 Q4_1
    python scripts/bench_decode.py --peer hf --peer llama.cpp --threads 2
    python scripts/bench_decode.py --model bf16 --peer llama.cpp --peer-model f16

--model / --peer-model take a path, or "f16" / "bf16": a float copy of the default Q4_1 GGUF
(scripts/make_float_gguf.py, written once into the llaisys cache). --peer-model is the file
llama.cpp loads (default: --model). Peers:
  hf         transformers, fp32 weights, torch threads set to --threads (prefill, decode,
             batched decode).
  llama.cpp  llama-cpp-python (prefill and single-stream decode; same thread count). It has
             no binary wheel; build it once outside the repository and install the wheel:
               CMAKE_ARGS="-DGGML_NATIVE=ON" pip wheel --no-deps llama-cpp-python -w WHEELS
               pip install WHEELS/llama_cpp_python-*.whl
--device nvidia runs llaisys and the hf peer (bf16) on the GPU (the 1.5B-shape GPU
figures with prefill 8 x 1024 and the throughput workload: scripts/bench_gpu.py).
Each repeat runs every engine once, interleaved, and the medians are reported; on a shared
machine compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PEERS = ("hf", "llama.cpp")
FLOAT_COPIES = ("f16", "bf16")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="HF directory, .gguf, or f16|bf16 (default: the SmolLM2 Q4_1 GGUF)")
    p.add_argument("--dtype", default=None, help="llaisys compute dtype (default: the model's)")
    p.add_argument("--peer", action="append", choices=PEERS, default=[],
                   help="peer to measure in the same run (repeatable)")
    p.add_argument("--peer-model", default=None,
                   help="file llama.cpp loads: .gguf or f16|bf16 (default: --model)")
    p.add_argument("--device", choices=["cpu", "nvidia"], default="cpu",
                   help="nvidia: llaisys and the hf peer (bf16) on the GPU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--decode-tokens", type=int, default=64,
                   help="tokens generated per sequence in the decode figures")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median)")
    p.add_argument("--skip-batched", action="store_true", help="prefill and single stream only")
    return p.parse_args()


def resolve_model(spec: str | None) -> Path:
    from llaisys.models import default_model

    if spec is None:
        return default_model()
    if spec not in FLOAT_COPIES:
        return Path(spec)
    src = default_model()
    dst = src.with_name(src.name.replace("Q4_1", spec.upper()))
    if not dst.exists():
        from scripts.make_float_gguf import make_float_gguf

        print(f"writing {dst} (once)", flush=True)
        make_float_gguf(src, dst, spec)
    return dst


@dataclass
class Figures:
    """Seconds per repeat of each case; a case is 'prefill', 'decode' or 'batch N'."""

    times: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def add(self, case: str, seconds: float, tokens: int) -> None:
        self.times.setdefault(case, []).append(seconds)
        self.tokens[case] = tokens

    def rate(self, case: str) -> float | None:
        if case not in self.times:
            return None
        return self.tokens[case] / statistics.median(self.times[case])

    def spread(self, case: str) -> float:
        """(max - min) / median of the per-repeat times: how noisy the case was."""
        t = self.times[case]
        return (max(t) - min(t)) / statistics.median(t)


def prompt_ids(vocab: int, n: int) -> list[int]:
    rng = np.random.default_rng(0)
    return [int(t) for t in rng.integers(100, min(vocab, 10000), size=n)]


class Llaisys:
    name = "llaisys"

    def __init__(self, path: Path, dtype: str | None, threads: int, max_seqs: int, ctx: int,
                 device: str):
        from llaisys import runtime
        from llaisys.models import SAMPLING_DTYPE, Model

        runtime.set_num_threads(threads)
        self.model = Model.load(path, dtype=dtype, device=device)
        self.block = 16
        self.width = -(-ctx // self.block)
        self.kv = self.model.create_kv_cache("block", n_cells=max_seqs * self.width * self.block,
                                             block_size=self.block)
        self.tables = np.arange(max_seqs * self.width, dtype=np.int32).reshape(max_seqs, -1)
        self.greedy = np.zeros(max_seqs, dtype=SAMPLING_DTYPE)
        self.greedy["top_p"] = 1.0
        self.label = f"llaisys {path.name} ({self.model.dtype.name} activations)"

    def _queue(self, seqs: np.ndarray, tokens: list[int], positions: list[int],
               output: np.ndarray | None, n_out: int, prev_row: np.ndarray | None = None):
        from llaisys.models import DecodeBatch

        pos = np.asarray(positions, dtype=np.int64)
        slots = (self.tables[seqs, pos // self.block].astype(np.int64) * self.block
                 + pos % self.block)
        return self.model.decode_async(self.kv, DecodeBatch(
            tokens=np.asarray(tokens, dtype=np.int64), positions=pos, seq_ids=seqs,
            output=output, prev_row=prev_row, slots=slots,
            block_tables=self.tables[:int(seqs.max()) + 1], sampling=self.greedy[:n_out]))

    def prefill(self, ids: list[int], seq: int = 0) -> int:
        seqs = np.full(len(ids), seq, dtype=np.int32)
        return int(self._queue(seqs, ids, list(range(len(ids))), None, 1).wait().token_ids[0])

    def decode(self, first: list[int], start: int, steps: int) -> None:
        """steps tokens for each of len(first) sequences, sequence s at positions start..;
        each step is queued before the one before it is waited for, its tokens taken from
        that step's samples in the core (prev_row), as the engine's async scheduling does
        (on the CPU a step completes before the call returns)."""
        seqs = np.arange(len(first), dtype=np.int32)
        out = np.ones(len(first), dtype=np.int8)
        rows = np.arange(len(first), dtype=np.int32)
        before = None
        for i in range(steps):
            step = self._queue(seqs, first, [start + i] * len(first), out, len(first),
                               None if i == 0 else rows)
            if before is not None:
                before.wait()
            before = step
        before.wait()

    def reset(self) -> None:
        self.kv.clear()


class Transformers:
    name = "hf"

    def __init__(self, path: Path, threads: int, device: str):
        os.environ.setdefault("TQDM_DISABLE", "1")  # its GGUF loader's progress bar
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        kw = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
        src = path.parent if path.suffix == ".gguf" else path
        self.torch = torch
        self.gpu = device == "nvidia"
        dtype = torch.bfloat16 if self.gpu else torch.float32
        self.hf = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kw).eval()
        self.hf.to("cuda" if self.gpu else "cpu")
        self.cache = None
        self.label = (f"transformers {path.name} (bf16 on the GPU)" if self.gpu else
                      f"transformers {path.name} (fp32, {threads} torch threads)")

    def prefill(self, ids: list[int], rows: int = 1) -> list[int]:
        with self.torch.no_grad():
            out = self.hf(self.torch.tensor([ids] * rows, device=self.hf.device), use_cache=True)
        self.cache = out.past_key_values
        return out.logits[:, -1].argmax(-1).tolist()

    def decode(self, first: list[int], steps: int) -> None:
        tok = self.torch.tensor(first, device=self.hf.device).unsqueeze(1)
        with self.torch.no_grad():
            for _ in range(steps):
                out = self.hf(tok, past_key_values=self.cache, use_cache=True)
                self.cache = out.past_key_values
                tok = out.logits[:, -1:].argmax(-1)
        if self.gpu:  # the timing ends when the GPU is done
            self.torch.cuda.synchronize()


class LlamaCpp:
    name = "llama.cpp"

    def __init__(self, path: Path, threads: int, ctx: int):
        try:
            from llama_cpp import Llama
        except ImportError:
            sys.exit("--peer llama.cpp needs llama-cpp-python (see this script's --help)")
        self.llm = Llama(str(path), n_ctx=ctx, n_batch=512, n_threads=threads,
                         n_threads_batch=threads, logits_all=False, verbose=False)
        self.label = f"llama.cpp {path.name} ({threads} threads)"

    def _next(self) -> int:
        return int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))

    def prefill(self, ids: list[int]) -> int:
        self.llm.reset()
        self.llm.eval(ids)
        return self._next()

    def decode(self, first: int, steps: int) -> None:
        tok = first
        for _ in range(steps):
            self.llm.eval([tok])
            tok = self._next()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_round(engine, figs: Figures, ids: list[int], steps: int, batches: list[int]) -> None:
    """One repeat of every case this engine supports."""
    n = len(ids)
    if isinstance(engine, Llaisys):
        engine.reset()
        figs.add("prefill", timed(lambda: engine.prefill(ids)), n)
        engine.reset()
        tok = engine.prefill(ids)
        figs.add("decode", timed(lambda: engine.decode([tok], n, steps)), steps)
        for b in batches:
            engine.reset()
            toks = [engine.prefill(ids, seq=s) for s in range(b)]
            figs.add(f"batch {b}", timed(lambda t=toks: engine.decode(t, n, steps)), b * steps)
    elif isinstance(engine, Transformers):
        figs.add("prefill", timed(lambda: engine.prefill(ids)), n)
        tok = engine.prefill(ids)
        figs.add("decode", timed(lambda: engine.decode(tok, steps)), steps)
        for b in batches:
            toks = engine.prefill(ids, rows=b)
            figs.add(f"batch {b}", timed(lambda t=toks: engine.decode(t, steps)), b * steps)
    else:
        figs.add("prefill", timed(lambda: engine.prefill(ids)), n)
        tok = engine.prefill(ids)
        figs.add("decode", timed(lambda: engine.decode(tok, steps)), steps)


def main() -> int:
    args = parse_args()
    model_path = resolve_model(args.model)
    batches = [] if args.skip_batched else args.batch
    ctx = args.prompt_len + args.decode_tokens + 16
    ours = Llaisys(model_path, args.dtype, args.threads, max(batches, default=1), ctx,
                   args.device)
    engines = [ours]
    if "hf" in args.peer:
        engines.append(Transformers(model_path, args.threads, args.device))
    if "llama.cpp" in args.peer:
        peer_path = resolve_model(args.peer_model) if args.peer_model else model_path
        engines.append(LlamaCpp(peer_path, args.threads, ctx))
    ids = prompt_ids(ours.model.config.vocab_size, args.prompt_len)
    figs = {e.name: Figures() for e in engines}
    from llaisys import runtime

    print(f"threads {args.threads}, kernel path {runtime.cpu_kernel_path()}, prompt "
          f"{args.prompt_len} tokens, {args.decode_tokens} decoded tokens per sequence, "
          f"{args.repeat} interleaved rounds (medians)")
    for e in engines:
        print(f"  {e.name:9s} {e.label}")
    for e in engines:  # warm-up: first-touch of weights and workspaces
        run_round(e, Figures(), ids, 4, batches)
    for _ in range(args.repeat):
        for e in engines:
            run_round(e, figs[e.name], ids, args.decode_tokens, batches)

    cases = ["prefill", "decode"] + [f"batch {b}" for b in batches]
    peers = [e.name for e in engines[1:]]
    head = f"{'case (tok/s)':<14}{'llaisys':>10}{'spread':>8}" + "".join(
        f"{p:>11}{'spread':>8}{'ratio':>8}" for p in peers)
    print("\n" + head + "\n" + "-" * len(head))
    for case in cases:
        r = figs["llaisys"].rate(case)
        line = f"{case:<14}{r:10.1f}{100 * figs['llaisys'].spread(case):7.0f}%"
        for p in peers:
            pr = figs[p].rate(case)
            line += (f"{pr:11.1f}{100 * figs[p].spread(case):7.0f}%{r / pr:7.2f}x" if pr
                     else f"{'-':>11}{'-':>8}{'-':>8}")
        print(line)
    print("ratio = llaisys / peer (above 1: llaisys faster); spread = (max - min) / median "
          "of the per-round times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
