"""Operator benchmark: llaisys beside torch (CPU, same thread count, same run) and beside the
machine's measured memory read bandwidth.

Decode shapes stream weights that are not in cache (each call uses the next of several weight
copies whose total is far larger than the last-level cache), so GB/s there is the rate at which
weights come from DRAM. Times are medians; the machine may be shared, so compare ratios.

    python scripts/bench_ops.py [--threads N] [--repeat R] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType, quants

from llaisys import DataType, Tensor, ops, runtime
from llaisys.tensor import f32_to_bf16_bits

# Weight copies of one shape together exceed this, so decode calls read weights from DRAM.
COLD_BYTES = 128 << 20

DECODE_SHAPES = [(576, 1536), (1536, 8960), (8960, 1536), (576, 49152)]  # (K, N)
DECODE_ROWS = [1, 8, 32, 64]
PREFILL_ROWS = 512

TORCH_DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
QUANT_TYPES = {
    "q8_0": (DataType.Q8_0, GGMLQuantizationType.Q8_0),
    "q4_0": (DataType.Q4_0, GGMLQuantizationType.Q4_0),
    "q4_1": (DataType.Q4_1, GGMLQuantizationType.Q4_1),
}


# Wall time by default; --clock cpu (one thread only) counts this thread's CPU time, which a
# machine shared with other work does not inflate while the benchmark waits for a core.
CLOCK: Callable[[], float] = time.perf_counter


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return statistics.median(times)


def read_bandwidth(threads: int, gib: float = 1.0) -> float:
    """Bytes/s of the fastest of: numpy reductions over a large array split across threads
    (numpy releases the GIL inside them), and torch's threaded sum."""
    n = int(gib * (1 << 30)) // 4
    a = np.ones(n, dtype=np.float32)
    parts = np.array_split(a, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for reduce in (np.add.reduce, np.maximum.reduce):
            if threads == 1:  # on this thread, so that --clock cpu sees the work
                t = median_time(lambda r=reduce: r(a), repeat=5, warmup=1)
            else:
                t = median_time(lambda r=reduce: list(pool.map(r, parts)), repeat=5, warmup=1)
            best = max(best, a.nbytes / t)
    ta = torch.from_numpy(a)
    best = max(best, a.nbytes / median_time(lambda: ta.sum(), repeat=5, warmup=1))
    return best


@dataclass
class Row:
    name: str
    ours: float
    torch: float | None
    flops: float = 0.0
    weight_bytes: float = 0.0


def print_table(title: str, rows: list[Row], bandwidth: float) -> None:
    print(f"\n## {title}")
    head = (f"{'case':<34} {'ours ms':>9} {'GFLOP/s':>8} {'GB/s':>7} {'%bw':>5} "
            f"{'torch ms':>9} {'torch/ours':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        gflops = f"{r.flops / r.ours / 1e9:8.1f}" if r.flops else f"{'':>8}"
        if r.weight_bytes:
            gbs = r.weight_bytes / r.ours / 1e9
            bw = f"{gbs:7.2f} {100 * r.weight_bytes / r.ours / bandwidth:5.0f}"
        else:
            bw = f"{'':>7} {'':>5}"
        tt = f"{r.torch * 1e3:9.3f} {r.torch / r.ours:10.2f}" if r.torch else f"{'-':>9} {'-':>10}"
        print(f"{r.name:<34} {r.ours * 1e3:9.3f} {gflops} {bw} {tt}")


def make_weight(rng: np.random.Generator, n: int, k: int, kind: str):
    """(host bytes and dtype of a llaisys weight, torch weight of the same values)."""
    w = (rng.standard_normal((n, k), dtype=np.float32) * 0.05).astype(np.float32)
    if kind in QUANT_TYPES:
        dt, gt = QUANT_TYPES[kind]
        q = quants.quantize(w, gt)
        return q, dt, torch.from_numpy(quants.dequantize(q, gt))
    if kind == "f16":
        return w.astype(np.float16), DataType.F16, torch.from_numpy(w).half()
    if kind == "bf16":
        return f32_to_bf16_bits(w), DataType.BF16, torch.from_numpy(w).bfloat16()
    return w, DataType.F32, torch.from_numpy(w)


def to_weight(host: np.ndarray, dtype: DataType, n: int, k: int) -> Tensor:
    t = Tensor.empty((n, k), dtype)
    t.load(host)
    return t


def act_dtype(kind: str) -> tuple[DataType, torch.dtype]:
    if kind in QUANT_TYPES or kind == "f32":
        return DataType.F32, torch.float32
    return (DataType.F16, torch.float16) if kind == "f16" else (DataType.BF16, torch.bfloat16)


def make_input(rng: np.random.Generator, m: int, k: int, kind: str):
    x = rng.standard_normal((m, k), dtype=np.float32)
    dt, tdt = act_dtype(kind)
    if dt == DataType.F16:
        t = Tensor.from_numpy(x.astype(np.float16))
    else:
        t = Tensor.from_numpy(x if dt == DataType.F32 else f32_to_bf16_bits(x), dt)
    return t, torch.from_numpy(x).to(tdt)


def bench_linear(rows: list[int], shapes: list[tuple[int, int]], kinds: list[str], repeat: int,
                 cold: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    out_rows = []
    for k, n in shapes:
        for kind in kinds:
            host, dt, tw0 = make_weight(rng, n, k, kind)
            wbytes = host.nbytes
            copies = max(1, COLD_BYTES // wbytes) if cold else 1
            ws = [to_weight(host, dt, n, k) for _ in range(copies)]
            # torch gets as many distinct copies so that its weights are just as cold.
            tws = [tw0] + [tw0.clone() for _ in range(copies - 1)]
            for m in rows:
                x, tx = make_input(rng, m, k, kind)
                out = Tensor.empty((m, n), act_dtype(kind)[0])
                it = iter(range(1 << 62))

                def ours(x=x, out=out, ws=ws, it=it):
                    ops.linear(out, x, ws[next(it) % len(ws)], None)

                tit = iter(range(1 << 62))
                tx_t = tx if kind not in QUANT_TYPES else tx.float()

                def theirs(tx=tx_t, tws=tws, tit=tit):
                    F.linear(tx, tws[next(tit) % len(tws)])

                t_ours = median_time(ours, repeat)
                t_torch = median_time(theirs, repeat)
                name = f"linear {kind:<4} m={m:<3} {k}->{n}"
                out_rows.append(Row(name, t_ours, t_torch, 2.0 * m * n * k, wbytes))
            del ws, tws
    return out_rows


def bench_rms_norm(repeat: int) -> list[Row]:
    rows = []
    rng = np.random.default_rng(1)
    for m, d in [(1, 1536), (64, 1536), (512, 1536), (512, 576)]:
        x = rng.standard_normal((m, d), dtype=np.float32)
        w = rng.standard_normal(d, dtype=np.float32)
        out = Tensor.empty((m, d))
        tx, tw = Tensor.from_numpy(x), Tensor.from_numpy(w)
        px, pw = torch.from_numpy(x), torch.from_numpy(w)
        t_ours = median_time(lambda o=out, x=tx, w=tw: ops.rms_norm(o, x, w, 1e-6), repeat)
        t_torch = median_time(lambda x=px, w=pw, d=d: F.rms_norm(x, (d,), w, 1e-6), repeat)
        rows.append(Row(f"rms_norm f32 [{m}, {d}]", t_ours, t_torch, weight_bytes=x.nbytes))
    return rows


def bench_attention(repeat: int) -> list[Row]:
    rows = []
    rng = np.random.default_rng(2)
    nh, nkvh, d = 12, 2, 128  # DeepSeek-R1-Distill-Qwen-1.5B
    scale = d**-0.5
    for qlen, klen in [(1, 512), (1, 2048), (8, 2048), (512, 512)]:
        q = rng.standard_normal((qlen, nh, d), dtype=np.float32)
        k = rng.standard_normal((klen, nkvh, d), dtype=np.float32)
        v = rng.standard_normal((klen, nkvh, d), dtype=np.float32)
        out = Tensor.empty((qlen, nh, d))
        tq, tk, tv = (Tensor.from_numpy(a) for a in (q, k, v))
        pq, pk, pv = (torch.from_numpy(a).transpose(0, 1) for a in (q, k, v))
        # Query i sits at position klen - qlen + i: a bottom-right aligned causal mask.
        mask = torch.ones(qlen, klen, dtype=torch.bool).tril(klen - qlen)

        t_ours = median_time(
            lambda o=out, q=tq, k=tk, v=tv: ops.self_attention(o, q, k, v, scale), repeat)
        t_torch = median_time(
            lambda q=pq, k=pk, v=pv, mask=mask: F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=scale, enable_gqa=True), repeat)
        flops = 4.0 * nh * d * qlen * klen
        rows.append(Row(f"attention f32 q={qlen} kv={klen}", t_ours, t_torch, flops,
                        k.nbytes + v.nbytes))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=0, help="default: llaisys's (physical cores)")
    p.add_argument("--repeat", type=int, default=15, help="timed calls per case (median)")
    p.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: this thread's CPU time (needs --threads 1; for busy machines)")
    args = p.parse_args()
    if args.clock == "cpu":
        if args.threads != 1:
            p.error("--clock cpu needs --threads 1")
        global CLOCK
        CLOCK = time.thread_time

    if args.threads > 0:
        runtime.set_num_threads(args.threads)
    threads = runtime.get_num_threads()
    torch.set_num_threads(threads)
    repeat = max(3, args.repeat // 3) if args.quick else args.repeat
    shapes = DECODE_SHAPES[:2] if args.quick else DECODE_SHAPES
    rows = [1, 32] if args.quick else DECODE_ROWS

    bandwidth = read_bandwidth(threads)
    print(f"threads {threads}, clock {args.clock}, kernel path {runtime.cpu_kernel_path()}, "
          f"torch {torch.__version__}, measured read bandwidth {bandwidth / 1e9:.2f} GB/s")
    print("GB/s = weight (or operand) bytes / time; %bw = that over the read bandwidth; "
          "torch runs Q* types as f32 linear over the dequantized weights")

    kinds = ["f32", "bf16", "f16", "q4_1", "q8_0"] + ([] if args.quick else ["q4_0"])
    print_table("linear, decode shapes (cold weights)",
                bench_linear(rows, shapes, kinds, repeat, cold=True), bandwidth)
    prefill_kinds = ["f32", "bf16"] if args.quick else ["f32", "bf16", "f16", "q4_1"]
    prefill_shapes = shapes if args.quick else DECODE_SHAPES[:3]
    print_table(f"linear, prefill shapes ({PREFILL_ROWS} rows)",
                bench_linear([PREFILL_ROWS], prefill_shapes, prefill_kinds,
                             max(3, repeat // 3), cold=False), bandwidth)
    print_table("rms_norm, self_attention", bench_rms_norm(repeat) + bench_attention(repeat),
                bandwidth)


if __name__ == "__main__":
    main()
