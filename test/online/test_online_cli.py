"""The command line: `python -m llaisys.server` / `llaisys serve` as a real process on
127.0.0.1, `llaisys generate`, `llaisys chat` (history, /reset) and `llaisys bench`."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from test.utils.tiny_models import write_tiny_hf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny-cli"), "llama")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def serve(args: list[str], port: int, timeout: float = 180) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "llaisys.server", *args, "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            if get(port, "/health")[0] == 200:
                return proc
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"server did not stop on SIGINT:\n{out[-3000:]}") from None
    return out


def cli(*args: str, stdin: str | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llaisys.cli", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_server_module_when_given_a_model_then_serves_openai_api_and_page(tiny_model):
    port = free_port()
    proc = serve([str(tiny_model), "--kv-cache-tokens", "1024", "--served-model-name", "tiny"],
                 port)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x",
                               max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["tiny"]
        r = client.chat.completions.create(model="tiny", max_tokens=3,
                                           messages=[{"role": "user", "content": "hi"}],
                                           extra_body={"ignore_eos": True})
        assert r.usage.completion_tokens == 3
        status, page = get(port, "/")
        assert status == 200 and "llaisys chat" in page
        assert get(port, "/static/app.js")[0] == 200
    finally:
        out = stop(proc)
    assert "Loaded" in out and f"http://127.0.0.1:{port}/" in out


def test_serve_when_no_model_given_then_default_smollm2_is_served():
    port = free_port()
    proc = serve(["--kv-cache-tokens", "1024", "--max-num-seqs", "2"], port, timeout=600)
    try:
        status, body = get(port, "/v1/models")
        assert status == 200
        assert json.loads(body)["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1"
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x",
                               max_retries=0, timeout=300)
        r = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", max_tokens=2,
                                           temperature=0,
                                           messages=[{"role": "user", "content": "Hi"}])
        assert r.usage.completion_tokens == 2
        assert get(port, "/")[0] == 200
    finally:
        stop(proc)


def test_generate_when_prompt_given_then_text_streamed_and_progress_on_stderr(tiny_model):
    res = cli("generate", "Hello there", "--model", str(tiny_model), "--max-tokens", "5",
              "--temperature", "0", "--kv-cache-tokens", "512")
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"Loading {tiny_model}" in res.stderr and "Loaded" in res.stderr
    assert res.stdout.endswith("\n")
    again = cli("generate", "Hello there", "--model", str(tiny_model), "--max-tokens", "5",
                "--temperature", "0", "--kv-cache-tokens", "512")
    assert again.stdout == res.stdout  # greedy


def test_chat_when_lines_typed_then_replies_streamed_and_reset_clears_history(tiny_model):
    res = cli("chat", "--model", str(tiny_model), "--max-tokens", "4", "--temperature", "0",
              "--kv-cache-tokens", "512", stdin="hello\n/reset\nhello\n/exit\n")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "(history cleared)" in res.stdout
    replies = [line for line in res.stdout.split("you> ") if "assistant> " in line]
    assert len(replies) == 2
    first, second = (r.split("assistant> ", 1)[1].split("\n", 1)[0] for r in replies)
    assert first == second  # the same question on an empty history, greedy


def test_bench_when_name_unknown_then_lists_available_and_fails():
    res = cli("bench", "no-such-bench")
    assert res.returncode == 2
    assert "serving" in res.stderr


def test_serve_when_limit_flags_given_then_each_limit_answers_its_4xx_or_503(tiny_model):
    port = free_port()
    proc = serve([str(tiny_model), "--kv-cache-tokens", "1024", "--served-model-name", "tiny",
                  "--api-key", "k3y", "--max-prompt-tokens", "24", "--max-tokens-limit", "200",
                  "--max-n", "2", "--max-body-bytes", "4096", "--max-num-seqs", "1",
                  "--max-waiting-requests", "1"], port)
    auth = {"Authorization": "Bearer k3y", "Content-Type": "application/json"}

    def post(body: dict | str, headers: dict[str, str] = auth) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            data = body if isinstance(body, str) else json.dumps(body)
            conn.request("POST", "/v1/chat/completions", body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    ok = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    try:
        assert get(port, "/health")[0] == 200
        for body, headers, status, code, param in [
            (ok, {"Content-Type": "application/json"}, 401, "invalid_api_key", None),
            ({**ok, "messages": [{"role": "user", "content": "word " * 40}]}, auth, 400, None,
             "messages"),
            ({**ok, "max_tokens": 201}, auth, 400, None, "max_tokens"),
            ({**ok, "n": 3}, auth, 400, None, "n"),
            (json.dumps({**ok, "pad": "x" * 5000}), auth, 413, "request_too_large", None),
        ]:
            got, resp = post(body, headers)
            assert got == status, resp
            assert set(resp["error"]) == {"message", "type", "param", "code"}
            assert code is None or resp["error"]["code"] == code
            assert param is None or resp["error"]["param"] == param
        assert post(ok)[0] == 200
        # One running and one waiting at most: of 8 long requests sent at once, some get 503.
        long = {**ok, "max_tokens": 200, "ignore_eos": True}
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: post(long), range(8)))
        statuses = sorted(status for status, _ in results)
        assert set(statuses) == {200, 503} and statuses[0] == 200, statuses
        assert all(r["error"]["code"] == "server_overloaded" for s, r in results if s == 503)
    finally:
        out = stop(proc)
    assert f"http://127.0.0.1:{port}/" in out


def test_serve_when_no_engine_flags_then_mixed_batches_and_a_small_step_budget():
    from llaisys.cli import SERVE_MAX_NUM_BATCHED_TOKENS, build_parser

    serve = build_parser().parse_args(["serve"])
    assert serve.mixed_batches and serve.max_num_batched_tokens == SERVE_MAX_NUM_BATCHED_TOKENS
    off = build_parser().parse_args(["serve", "--no-mixed-batches"])
    assert not off.mixed_batches
    generate = build_parser().parse_args(["generate", "hi"])
    assert generate.max_num_batched_tokens == 2048
    assert not generate.mixed_batches  # offline: EngineArgs' default, prefill-only steps first


def test_serve_when_async_scheduling_flags_then_parsed_else_left_to_the_device():
    from llaisys.cli import build_parser

    assert build_parser().parse_args(["serve"]).async_scheduling is None
    assert build_parser().parse_args(["serve", "--async-scheduling"]).async_scheduling is True
    assert build_parser().parse_args(["serve", "--no-async-scheduling"]).async_scheduling is False
