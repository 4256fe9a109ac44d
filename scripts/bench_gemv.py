"""Time of the core's decode GEMV (llaisys.ops.linear with few rows of x) on each product of
a DeepSeek-R1-Distill-Qwen-1.5B layer and its lm_head, on the GPU, against the time its
weight bytes take at the copy bandwidth.

    python scripts/bench_gemv.py                 # one row of x (single-stream decode)
    python scripts/bench_gemv.py --rows 8        # a decode batch of 8

W rotates over copies filling about 1 GB, so every call reads it from HBM (cold L2), as a
decode step does. A time is the GPU time the calls' kernels cover (torch.profiler's
kernel intervals, merged) divided by the calls: a call's kernel may start while the one
before finishes, as in a decode step, so summing their durations would count that overlap
twice, and the gaps Python leaves between launches are not counted. Weights are
uninitialised: only time is measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (name, n, k); gate_up is the fused SwiGLU product: two W of n x k.
SHAPES = [("qkv", 2048, 1536), ("o", 1536, 1536), ("gate_up", 8960, 1536),
          ("down", 1536, 8960), ("lm_head", 151936, 1536)]


def positive(kind: type):
    """An argparse type: a number of kind above zero (a zero would divide the timings by 0)."""
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=positive(int), default=1,
                   help="rows of x (1-8 take the GEMV)")
    p.add_argument("--calls", type=positive(int), default=60, help="timed calls per product")
    p.add_argument("--bandwidth", type=positive(float), default=4.25,
                   help="copy bandwidth in TB/s the floor is taken at (the H200's measured)")
    return p.parse_args()


def covered_us(prof) -> float:
    """Microseconds during which at least one profiled kernel ran."""
    from torch.autograd import DeviceType

    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == DeviceType.CUDA)
    total, reach = 0.0, float("-inf")
    for start, end in spans:
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def time_product(name: str, n: int, k: int, args: argparse.Namespace) -> None:
    """Prints the mean kernel time of one product's call against its weight bytes' floor."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from llaisys import DataType, DeviceType, Tensor, ops

    nv, bf16 = DeviceType.NVIDIA, DataType.BF16
    fused = name == "gate_up"
    weights = 2 if fused else 1
    nbytes = weights * n * k * 2
    copies = max(1, min(16, (1 << 30) // nbytes))
    w = [[Tensor.empty((n, k), bf16, nv) for _ in range(weights)] for _ in range(copies)]
    x = Tensor.empty((args.rows, k), bf16, nv)
    out, gate, up = (Tensor.empty((args.rows, n), bf16, nv) for _ in range(3))

    def call(i: int) -> None:
        ws = w[i % copies]
        if fused:
            ops.linear_swiglu(out, x, ws[0], ws[1], gate, up)
        else:
            ops.linear(out, x, ws[0])

    for i in range(10):
        call(i)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(args.calls):
            call(i)
        torch.cuda.synchronize()
    us = covered_us(prof) / args.calls
    floor = nbytes / (args.bandwidth * 1e6)
    print(f"  {name:<8} n={n:6d} k={k:5d} {nbytes / 1e6:6.1f} MB  {us:8.2f} us "
          f"{nbytes / us / 1e3:6.0f} GB/s  "
          f"floor {floor:7.2f} us = {100 * floor / us:3.0f}%", flush=True)


def main() -> int:
    args = parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gemv: no CUDA device", file=sys.stderr)
        return 2
    print(f"decode GEMV, bf16, {args.rows} row(s) of x, cold L2; floor at "
          f"{args.bandwidth:.2f} TB/s")
    for name, n, k in SHAPES:
        time_product(name, n, k, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
