#!/usr/bin/env python3
"""Soak test: a real server on 127.0.0.1 under many concurrent misbehaving clients.

Starts `python -m llaisys.server MODEL` (default: SmolLM2-135M-Instruct) on a free loopback
port and drives --concurrency async clients (httpx) through --requests chat completions with
random prompt and output lengths, streamed or not. Some requests are cancelled mid-stream
through POST /v1/requests/{id}/cancel, some are dropped by closing the connection
mid-stream. Prints, and checks (exit status 1 when one fails):

  5xx responses                                   must be 0
  requests by finish reason (client side)         every one has a finish reason, or is a
                                                  disconnect the server counted as aborted
  server requests_total by reason (/metrics)      every admitted request ended; none "error"
  KV used blocks once idle (/metrics)             must be 0
  server RSS after warm-up vs after the run       within --rss-tolerance (5%)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from server_process import start_server  # scripts/ is on sys.path when run as a script

from llaisys.server.metrics import parse_metrics

WORDS = ("the a of to and in is it you that he was for on are with as his they be at one "
         "have this from or had by hot word but what some we can out other were all there "
         "when up use your how said an each she which do their time if will way about many "
         "then them write would like so these her long make thing see him two has look more "
         "day could go come did number sound no most people my over know water than call "
         "first who may down side been now find any new work part take get place made live "
         "where after back little only round man year came show every good me give our "
         "under name very through just form sentence great think say help low line differ "
         "turn cause much mean before move right boy old too same tell does set three want "
         "air well also play small end put home read hand port large spell add even land "
         "here must big high such follow act why ask men change went light kind off need "
         "house picture try us again animal point mother world near build self earth father "
         "café naïve 你好 🤗 <|im_end|> \\n {} [] \"quotes\"").split()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="HF directory or GGUF file (default: llaisys.models.default_model())")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--warmup", type=int, default=None,
                   help="requests before the RSS baseline (default: 10%% of --requests, at "
                        "least twice --concurrency so it reaches full load, at most half)")
    p.add_argument("--prompt-words", type=int, nargs=2, default=(1, 200), metavar=("MIN", "MAX"))
    p.add_argument("--max-tokens", type=int, nargs=2, default=(1, 64), metavar=("MIN", "MAX"))
    p.add_argument("--cancel-rate", type=float, default=0.1)
    p.add_argument("--disconnect-rate", type=float, default=0.1)
    p.add_argument("--rss-tolerance", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds one request may take, and the server to start")
    p.add_argument("server_args", nargs="*",
                   help="extra `llaisys serve` flags (after --), e.g. -- --kv-cache-tokens 4096")
    return p.parse_args()


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)  # of the completion requests
    cancel_statuses: Counter = field(default_factory=Counter)  # 404: it had finished already
    reasons: Counter = field(default_factory=Counter)  # client-observed, per request
    problems: list[str] = field(default_factory=list)


def metrics(base: str) -> dict[str, float]:
    return parse_metrics(httpx.get(base + "/metrics", timeout=30).text)


def wait_idle(base: str, timeout: float = 60.0) -> dict[str, float]:
    """Metrics once nothing runs or waits and no KV block is used (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(base)
        idle = (m["llaisys_num_requests_running"] == m["llaisys_num_requests_waiting"] == 0
                and m["llaisys_kv_cache_used_blocks"] == 0)
        if idle or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


def server_reasons(m: dict[str, float]) -> Counter:
    prefix = "llaisys_requests_total{finish_reason="
    return Counter({k[len(prefix):-1]: int(v) for k, v in m.items() if k.startswith(prefix)})


async def one_request(client: httpx.AsyncClient, rng: random.Random, args: argparse.Namespace,
                      tally: Tally) -> None:
    words = rng.randint(*args.prompt_words)
    body = {"model": "soak", "temperature": rng.choice([0.0, 0.7, 1.0]),
            "max_tokens": rng.randint(*args.max_tokens), "ignore_eos": rng.random() < 0.5,
            "messages": [{"role": "user", "content": " ".join(rng.choices(WORDS, k=words))}]}
    roll = rng.random()
    action = ("cancel" if roll < args.cancel_rate else
              "disconnect" if roll < args.cancel_rate + args.disconnect_rate else "complete")
    stream = action != "complete" or rng.random() < 0.5
    if not stream:
        r = await client.post("/v1/chat/completions", json=body)
        tally.statuses[r.status_code] += 1
        if r.status_code == 200:
            tally.reasons[r.json()["choices"][0]["finish_reason"] or "missing"] += 1
        return
    after = rng.randint(1, 4)  # events read before cancelling or disconnecting
    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}
                             ) as r:
        tally.statuses[r.status_code] += 1
        if r.status_code != 200:
            await r.aread()
            return
        reason, events = None, 0
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                tally.problems.append(f"corrupt event: {data[:200]!r}")
                reason = "error"
                continue
            if "error" in event:
                reason = "error"
                continue
            events += 1
            for choice in event.get("choices", []):
                reason = choice.get("finish_reason") or reason
            if events == after and reason is None:
                if action == "disconnect":
                    tally.reasons["disconnected"] += 1
                    return  # leaving the block closes the connection mid-stream
                if action == "cancel":
                    c = await client.post(f"/v1/requests/{event['id']}/cancel")
                    tally.cancel_statuses[c.status_code] += 1
        tally.reasons[reason or "missing"] += 1


async def drive(base: str, n: int, args: argparse.Namespace, rng: random.Random,
                tally: Tally) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits) as client:
        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                try:
                    await one_request(client, rng, args, tally)
                except httpx.HTTPError as e:
                    tally.problems.append(f"{type(e).__name__}: {e}")

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    warmup = args.warmup if args.warmup is not None else min(
        max(args.requests // 10, 2 * args.concurrency), args.requests // 2)
    if args.model is None:
        from llaisys.models import default_model

        args.model = str(default_model())
    log = Path(tempfile.mkstemp(prefix="llaisys-soak-", suffix=".log")[1])
    with open(log, "w") as out:
        try:
            proc, base = start_server(
                [args.model, "--served-model-name", "soak", *args.server_args],
                timeout=args.timeout, log=out)
        except SystemExit:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
    tally = Tally()
    try:
        start = time.monotonic()
        asyncio.run(drive(base, warmup, args, rng, tally))
        wait_idle(base)
        rss_warm = psutil.Process(proc.pid).memory_info().rss
        asyncio.run(drive(base, args.requests - warmup, args, rng, tally))
        m = wait_idle(base)
        rss_end = psutil.Process(proc.pid).memory_info().rss
        elapsed = time.monotonic() - start
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    served = server_reasons(m)
    n_5xx = sum(v for k, v in (tally.statuses + tally.cancel_statuses).items() if k >= 500)
    rejected = sum(v for k, v in tally.statuses.items() if 400 <= k < 500)
    growth = rss_end / rss_warm - 1
    client_ended = sum(v for k, v in tally.reasons.items() if k not in ("missing", "error"))
    disconnects = tally.reasons["disconnected"]
    # A disconnect the server saw before the request finished ends as an abort there; one
    # that came after the last token leaves the server's own reason (stop/length).
    unaccounted = served["abort"] - (tally.reasons["abort"] + disconnects)
    checks = {
        "no 5xx": n_5xx == 0,
        "no transport errors": not tally.problems,
        "every request has a finish reason": tally.reasons["missing"] == 0
        and tally.reasons["error"] == 0 and client_ended == args.requests - rejected,
        "server ended every admitted request": sum(served.values()) == args.requests - rejected
        and served["error"] == 0 and unaccounted <= 0,
        "cancels counted as aborts": served["abort"] >= tally.reasons["abort"],
        "KV cache empty when idle": m["llaisys_kv_cache_used_blocks"] == 0,
        f"RSS within {args.rss_tolerance:.0%}": abs(growth) <= args.rss_tolerance,
    }
    print(f"soak: {args.requests} requests, {args.concurrency} clients, {elapsed:.0f}s, "
          f"model {args.model}")
    print(f"  HTTP statuses          {dict(sorted(tally.statuses.items()))}, cancel calls "
          f"{dict(sorted(tally.cancel_statuses.items()))}")
    print(f"  5xx                    {n_5xx}")
    print(f"  client finish reasons  {dict(sorted(tally.reasons.items()))}")
    print(f"  server finish reasons  {dict(sorted(served.items()))}")
    print(f"  KV used blocks idle    {int(m['llaisys_kv_cache_used_blocks'])}")
    print(f"  server RSS             {rss_warm / 2**20:.1f} MiB after warm-up ({warmup} "
          f"requests), {rss_end / 2**20:.1f} MiB after the run ({growth:+.2%})")
    for problem in tally.problems[:10]:
        print(f"  transport error: {problem}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    if all(checks.values()):
        os.unlink(log)
        return 0
    print(f"  server log: {log}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
