"""End to end: the real LLMEngine on the real core, serving a tiny random Qwen2 checkpoint
(written by test/utils/tiny_models.py, with a real BPE tokenizer and chat template),
talked to with the official openai client over HTTP on 127.0.0.1; on the GPU with
LLAISYS_TEST_DEVICE=nvidia."""

from __future__ import annotations

import json
import math
import socket
import threading
import time

import pytest

from llaisys.engine import EngineArgs, LLMEngine
from llaisys.models.loader import expected_weights
from test.online.server_support import RunningServer, open_stream, read_events
from test.utils.tiny_models import write_tiny_hf

MODEL = "tiny"
USER = [{"role": "user", "content": "hi there"}]
CANDIDATES = ["hi there", "Count to ten.", "Tell me a story.", "What is 2+2?", "Good day!",
              "Name a color.", "Say something."]


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_device: str):
    path = write_tiny_hf(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")
    engine = LLMEngine(EngineArgs(model=str(path), kv_cache_tokens=2048, max_num_seqs=16,
                                  device=test_device))
    with RunningServer(engine, served_model_name=MODEL) as srv:
        yield srv


@pytest.fixture(scope="module")
def ascii_user(server) -> list[dict[str, str]]:
    """A user message whose greedy reply (16 tokens) from the random tiny model is plain
    ASCII with at least two distinct characters, so text checks are meaningful."""
    client = server.client()
    for content in CANDIDATES:
        messages = [{"role": "user", "content": content}]
        reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                               max_tokens=16).choices[0].message.content
        if reply.isascii() and len(set(reply)) > 1:
            return messages
    raise AssertionError("no candidate prompt gets an ASCII reply from the tiny model")


def stream_chat(client, **kw) -> tuple[str, str | None, list]:
    chunks = list(client.chat.completions.create(model=MODEL, stream=True, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices
               and c.choices[0].finish_reason]
    return text, (reasons[-1] if reasons else None), chunks


def test_chat_when_streamed_or_not_then_same_greedy_text(server, ascii_user):
    client = server.client()
    whole = client.chat.completions.create(model=MODEL, messages=ascii_user, temperature=0,
                                           max_tokens=12)
    text, reason, chunks = stream_chat(client, messages=ascii_user, temperature=0,
                                       max_tokens=12)
    assert text == whole.choices[0].message.content != ""
    assert reason == whole.choices[0].finish_reason == "length"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert whole.usage.completion_tokens == 12


def test_completions_when_streamed_or_not_then_same_greedy_text(server):
    client = server.client()
    whole = client.completions.create(model=MODEL, prompt="The quick brown fox", max_tokens=10,
                                      temperature=0)
    chunks = list(client.completions.create(model=MODEL, prompt="The quick brown fox",
                                            max_tokens=10, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_chat_when_n_is_2_with_seed_then_two_choices_reproducible(server):
    client = server.client()
    kw = {"model": MODEL, "messages": USER, "n": 2, "max_tokens": 10, "temperature": 1.0}
    a = client.chat.completions.create(seed=11, **kw)
    b = client.chat.completions.create(seed=11, **kw)
    assert [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    assert a.usage.completion_tokens == 20


def test_chat_when_seeded_then_same_text_and_other_seed_differs(server):
    client = server.client()
    kw = {"model": MODEL, "messages": USER, "max_tokens": 12, "temperature": 1.0}
    runs = [client.chat.completions.create(seed=s, **kw).choices[0].message.content
            for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_chat_when_stop_string_hit_then_text_ends_before_it(server, ascii_user):
    client = server.client()
    full = client.chat.completions.create(model=MODEL, messages=ascii_user, temperature=0,
                                          max_tokens=16).choices[0].message.content
    stop = next(ch for i, ch in enumerate(full) if ch not in full[:i] and i > 0)
    r = client.chat.completions.create(model=MODEL, messages=ascii_user, temperature=0,
                                       max_tokens=16, stop=[stop])
    assert r.choices[0].message.content == full[:full.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    text, reason, _ = stream_chat(client, messages=ascii_user, temperature=0, max_tokens=16,
                                  stop=[stop])
    assert (text, reason) == (full[:full.index(stop)], "stop")


def test_chat_when_logprobs_asked_then_one_entry_per_token_with_top_k(server):
    r = server.client().chat.completions.create(model=MODEL, messages=USER, temperature=0,
                                                max_tokens=6, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 6
    for entry in content:
        assert len(entry.top_logprobs) == 3
        assert entry.logprob <= 0
        tops = [t.logprob for t in entry.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert entry.logprob == pytest.approx(tops[0])  # greedy: the sampled token is the top


def test_stream_when_include_usage_then_final_usage_chunk_counts_tokens(server):
    _, _, chunks = stream_chat(server.client(), messages=USER, max_tokens=7,
                               stream_options={"include_usage": True},
                               extra_body={"ignore_eos": True})
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7


def test_streams_when_16_concurrent_then_each_equals_its_request_made_alone(server):
    client = server.client()
    prompts = [f"Question number {i}: what is {i} plus {i}?" for i in range(16)]
    got: dict[int, str] = {}

    def one(i: int) -> None:
        got[i], _, _ = stream_chat(client, messages=[{"role": "user", "content": prompts[i]}],
                                   temperature=0, max_tokens=8)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(got) == list(range(16))
    for i, prompt in enumerate(prompts):
        alone = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], temperature=0,
            max_tokens=8)
        assert got[i] == alone.choices[0].message.content, i
    assert server.wait_idle()["llaisys_kv_cache_used_blocks"] == 0


def long_request(stream: bool) -> dict:
    return {"model": MODEL, "messages": USER, "max_tokens": 200, "ignore_eos": True,
            "stream": stream}


def aborted(server: RunningServer) -> float:
    return server.metrics().get("llaisys_requests_total{finish_reason=abort}", 0.0)


def test_cancel_endpoint_when_mid_stream_then_stream_ends_aborted_and_blocks_free(server):
    before = aborted(server)
    conn, resp = open_stream(server.port, "/v1/chat/completions", long_request(True))
    first = read_events(resp, 3)
    ident = json.loads(first[0])["id"]
    assert server.metrics()["llaisys_kv_cache_used_blocks"] > 0
    status, body = server.request("POST", f"/v1/requests/{ident}/cancel")
    assert (status, body["cancelled"]) == (200, True)
    rest = read_events(resp, 10_000)
    conn.close()
    assert rest[-1] == "[DONE]"
    reasons = [json.loads(e)["choices"][0]["finish_reason"] for e in rest[:-1]]
    assert reasons[-1] == "abort" and len(rest) < 200
    m = server.wait_idle()
    assert m["llaisys_kv_cache_used_blocks"] == 0
    assert aborted(server) == before + 1
    assert server.request("POST", f"/v1/requests/{ident}/cancel")[0] == 404


def test_client_when_it_disconnects_mid_stream_then_request_aborted_and_blocks_free(server):
    before = aborted(server)
    conn, resp = open_stream(server.port, "/v1/chat/completions", long_request(True))
    read_events(resp, 3)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    m = server.wait_idle()
    assert m["llaisys_kv_cache_used_blocks"] == 0
    assert aborted(server) == before + 1


def test_client_when_it_disconnects_before_non_stream_answer_then_request_aborted(server):
    before = aborted(server)
    body = json.dumps(long_request(False)).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    deadline = time.monotonic() + 30
    while server.metrics()["llaisys_kv_cache_used_blocks"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sock.close()
    m = server.wait_idle()
    assert m["llaisys_kv_cache_used_blocks"] == 0
    assert aborted(server) == before + 1


def test_prompt_when_longer_than_context_then_400_and_server_keeps_serving(server):
    status, body = server.request("POST", "/v1/chat/completions",
                                  {"model": MODEL,
                                   "messages": [{"role": "user", "content": "word " * 400}]})
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    status, body = server.request("POST", "/v1/completions",
                                  {"model": MODEL, "prompt": "hi", "max_tokens": 1000})
    assert status == 400 and body["error"]["param"] == "max_tokens"
    assert server.request("GET", "/health") == (200, {"status": "ok"})
    # ignore_eos: the random tiny model may sample its EOS first, which would end it early.
    r = server.client().completions.create(model=MODEL, prompt="hi", max_tokens=2,
                                           extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 2


def test_prompt_when_repeated_then_prefix_cache_hits_show_in_usage_and_metrics(server):
    client = server.client()
    prompt = "A long shared system prompt that spans several KV blocks. " * 4
    first = client.completions.create(model=MODEL, prompt=prompt, max_tokens=2)
    second = client.completions.create(model=MODEL, prompt=prompt, max_tokens=2)
    assert first.usage.prompt_tokens == second.usage.prompt_tokens > 32
    assert second.usage.prompt_tokens_details.cached_tokens >= 32
    assert server.metrics()["llaisys_prefix_cache_hit_rate"] > 0


def test_metrics_when_scraped_then_resident_memory_beside_weight_and_kv_bytes(server):
    m = server.metrics()
    kv = server.async_engine.engine.executor.kv_cache_bytes()
    assert m["llaisys_kv_cache_bytes"] == kv > 0
    # The tiny checkpoint is f32: 4 bytes for every element the config calls for.
    config = server.async_engine.engine.model_config
    elements = sum(math.prod(shape) for shape in expected_weights(config).values())
    assert m["llaisys_model_weight_bytes"] == 4 * elements
    assert m["process_resident_memory_bytes"] > 0
