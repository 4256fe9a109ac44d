#!/usr/bin/env python3
"""Online serving benchmark over the OpenAI API (the official openai client, streaming).

N requests at concurrency C, each a synthetic prompt of about --prompt-len tokens asking for
exactly --output-len tokens (ignore_eos). Reports time to first token (TTFT), inter-token
latency (ITL: the gaps between streamed chunks), time per output token after the first
(TPOT), p50/p99, and output tokens/s.

Without --url it starts `python -m llaisys.server` on 127.0.0.1 itself (--model and
--server-arg pass through). --peer-url runs the same load against another OpenAI-compatible
server in the same run (e.g. llama.cpp's llama-server on the same GGUF) and prints the
ratios llaisys / peer. Against a llaisys server it also samples /metrics during the load and
prints peak resident memory beside the weights and KV cache bytes the core holds.

  python scripts/bench_serving.py -n 32 -c 8 --prompt-len 128 --output-len 64
  python scripts/bench_serving.py --url http://127.0.0.1:8000 --peer-url http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import openai
from server_process import start_server  # scripts/ is on sys.path when run as a script

from llaisys.server.metrics import parse_metrics

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("time person year way day thing man world life hand part child eye woman place work "
         "week case point government company number group problem fact").split()


@dataclass
class Result:
    ok: bool
    prompt_tokens: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    e2e: float = 0.0
    itl: list[float] = field(default_factory=list)
    error: str = ""


@dataclass
class Summary:
    label: str
    url: str
    requests: int
    failed: int
    duration_s: float
    mean_prompt_tokens: float
    output_tokens: int
    output_tok_s: float
    req_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    itl_p99_ms: float
    tpot_p50_ms: float
    tpot_p99_ms: float
    e2e_p50_s: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def make_prompts(n: int, length: int, seed: int) -> list[str]:
    """About ``length`` tokens each (one common English word is about one token); each
    prompt starts differently so no two share a cached prefix."""
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choice(WORDS) for _ in range(max(1, length - 3)))
            for i in range(n)]


async def one_request(client: openai.AsyncOpenAI, model: str, prompt: str, output_len: int,
                      chat: bool) -> Result:
    extra = {"ignore_eos": True, "min_tokens": output_len}
    start = time.perf_counter()
    stamps: list[float] = []
    usage = None
    try:
        if chat:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], stream=True,
                max_tokens=output_len, temperature=0, stream_options={"include_usage": True},
                extra_body=extra)
        else:
            stream = await client.completions.create(
                model=model, prompt=prompt, stream=True, max_tokens=output_len, temperature=0,
                stream_options={"include_usage": True}, extra_body=extra)
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            if not chunk.choices:
                continue
            c = chunk.choices[0]
            text = (c.delta.content or getattr(c.delta, "reasoning_content", None)) if chat \
                else c.text
            if text:
                stamps.append(time.perf_counter())
    except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
        return Result(ok=False, error=f"{type(exc).__name__}: {exc}")
    end = time.perf_counter()
    if not stamps:
        return Result(ok=False, error="no token streamed")
    out_tokens = usage.completion_tokens if usage else len(stamps)
    return Result(ok=True, prompt_tokens=usage.prompt_tokens if usage else 0,
                  output_tokens=out_tokens, ttft=stamps[0] - start, e2e=end - start,
                  itl=[b - a for a, b in zip(stamps, stamps[1:], strict=False)])


async def run_load(url: str, model: str | None, api_key: str, prompts: list[str],
                   output_len: int, concurrency: int, chat: bool) -> tuple[str, list[Result],
                                                                           float]:
    client = openai.AsyncOpenAI(base_url=url.rstrip("/") + "/v1", api_key=api_key,
                                max_retries=0, timeout=3600)
    if model is None:
        model = (await client.models.list()).data[0].id
    await one_request(client, model, prompts[0], min(output_len, 4), chat)  # warm-up
    sem = asyncio.Semaphore(concurrency)

    async def bounded(p: str) -> Result:
        async with sem:
            return await one_request(client, model, p, output_len, chat)

    start = time.perf_counter()
    results = await asyncio.gather(*[bounded(p) for p in prompts])
    duration = time.perf_counter() - start
    await client.close()
    return model, list(results), duration


class MemorySampler:
    """Polls a llaisys server's /metrics in a thread: peak process_resident_memory_bytes, and
    the weights and KV cache bytes it reports (absent from other servers)."""

    def __init__(self, url: str, interval: float = 0.25) -> None:
        u = urlparse(url)
        self._host, self._port = u.hostname or "127.0.0.1", u.port or 80
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.values: dict[str, float] = {}
        self.peak_rss = 0.0

    def _scrape(self) -> None:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        samples = parse_metrics(text)
        for name in ("process_resident_memory_bytes", "llaisys_model_weight_bytes",
                     "llaisys_kv_cache_bytes"):
            if name in samples:
                self.values[name] = samples[name]
        self.peak_rss = max(self.peak_rss, self.values.get("process_resident_memory_bytes", 0))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._scrape()
            except OSError:
                pass

    def __enter__(self) -> MemorySampler:
        try:
            self._scrape()
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> str | None:
        weights = self.values.get("llaisys_model_weight_bytes")
        kv = self.values.get("llaisys_kv_cache_bytes")
        if weights is None or kv is None or not self.peak_rss:
            return None
        mib = 1 << 20
        return (f"peak RSS {self.peak_rss / mib:.0f} MiB; weights as loaded "
                f"{weights / mib:.0f} MiB + KV "
                f"cache {kv / mib:.0f} MiB = {(weights + kv) / mib:.0f} MiB; RSS / (weights + "
                f"KV) = {self.peak_rss / (weights + kv):.2f}")


def summarize(label: str, url: str, results: list[Result], duration: float) -> Summary:
    ok = [r for r in results if r.ok]
    itl = [x for r in ok for x in r.itl]
    tpot = [(r.e2e - r.ttft) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    out_tokens = sum(r.output_tokens for r in ok)
    return Summary(
        label=label, url=url, requests=len(results), failed=len(results) - len(ok),
        duration_s=duration,
        mean_prompt_tokens=sum(r.prompt_tokens for r in ok) / max(1, len(ok)),
        output_tokens=out_tokens, output_tok_s=out_tokens / duration if duration else 0.0,
        req_s=len(ok) / duration if duration else 0.0,
        ttft_p50_ms=1e3 * percentile([r.ttft for r in ok], 50),
        ttft_p99_ms=1e3 * percentile([r.ttft for r in ok], 99),
        itl_p50_ms=1e3 * percentile(itl, 50), itl_p99_ms=1e3 * percentile(itl, 99),
        tpot_p50_ms=1e3 * percentile(tpot, 50), tpot_p99_ms=1e3 * percentile(tpot, 99),
        e2e_p50_s=percentile([r.e2e for r in ok], 50))


ROWS = [("requests (failed)", None), ("duration s", "duration_s"),
        ("mean prompt tokens", "mean_prompt_tokens"), ("output tokens", "output_tokens"),
        ("output tok/s", "output_tok_s"), ("requests/s", "req_s"),
        ("TTFT p50 ms", "ttft_p50_ms"), ("TTFT p99 ms", "ttft_p99_ms"),
        ("ITL p50 ms", "itl_p50_ms"), ("ITL p99 ms", "itl_p99_ms"),
        ("TPOT p50 ms", "tpot_p50_ms"), ("TPOT p99 ms", "tpot_p99_ms"),
        ("E2E p50 s", "e2e_p50_s")]


def print_table(summaries: list[Summary]) -> None:
    header = f"{'':22s}" + "".join(f"{s.label:>16s}" for s in summaries)
    if len(summaries) == 2:
        header += f"{'ratio':>10s}"
    print(header)
    for name, key in ROWS:
        if key is None:
            cells = [f"{s.requests} ({s.failed})" for s in summaries]
            print(f"{name:22s}" + "".join(f"{c:>16s}" for c in cells))
            continue
        values = [getattr(s, key) for s in summaries]
        line = f"{name:22s}" + "".join(f"{v:16.2f}" for v in values)
        if len(values) == 2:
            line += f"{values[0] / values[1]:10.2f}" if values[1] else f"{'-':>10s}"
        print(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running llaisys (or other) server; default: start one")
    p.add_argument("--model", default=None,
                   help="model path for the server started here (default: the default model)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for the server started here (repeatable)")
    p.add_argument("--model-name", default=None, help="model name to request (default: the "
                                                      "first of /v1/models)")
    p.add_argument("--peer-url", default=None, help="another OpenAI-compatible server")
    p.add_argument("--peer-model-name", default=None)
    p.add_argument("--api-key", default="none")
    p.add_argument("-n", "--num-requests", type=int, default=32)
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--output-len", type=int, default=64)
    p.add_argument("--endpoint", choices=["completions", "chat"], default="completions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write the summaries here")
    args = p.parse_args()

    for url in filter(None, (args.url, args.peer_url)):
        host = urlparse(url).hostname or ""
        if not (host in ("localhost", "::1") or host.startswith("127.")):
            raise SystemExit(f"{url}: this benchmark only targets loopback servers")
    prompts = make_prompts(args.num_requests, args.prompt_len, args.seed)
    chat = args.endpoint == "chat"
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server([*([args.model] if args.model else []), *args.server_arg],
                                 timeout=900, cwd=ROOT)
    summaries = []
    memory_lines: list[str] = []
    try:
        print(f"{args.num_requests} requests, concurrency {args.concurrency}, prompt ~"
              f"{args.prompt_len} tokens, output {args.output_len} tokens, /v1/"
              f"{'chat/completions' if chat else 'completions'}", flush=True)
        targets = [("llaisys", url, args.model_name)]
        if args.peer_url:
            targets.append(("peer", args.peer_url, args.peer_model_name))
        for label, target, name in targets:
            with MemorySampler(target) as memory:
                model, results, duration = asyncio.run(run_load(
                    target, name, args.api_key, prompts, args.output_len, args.concurrency,
                    chat))
            s = summarize(label, target, results, duration)
            summaries.append(s)
            errors = {r.error for r in results if not r.ok}
            print(f"{label}: {target} model={model} done in {duration:.1f}s"
                  + (f"; errors: {sorted(errors)[:3]}" if errors else ""), flush=True)
            if (line := memory.report()) is not None:
                memory_lines.append(f"{label} memory: {line}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    print()
    print_table(summaries)
    for line in memory_lines:
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in summaries], indent=2))
    return 1 if any(s.failed for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
