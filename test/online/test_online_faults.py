"""Fault injection through the server on the real engine (a tiny random Qwen2): a model step
that raises fails its requests with OpenAI error bodies (a 500, or an error event then
[DONE] in a stream); the engine loop survives, later requests get the same text as before
the fault, and every KV block is freed."""

from __future__ import annotations

import json

import pytest

from llaisys.engine import EngineArgs, LLMEngine
from test.online.server_support import RunningServer, open_stream, read_events
from test.utils.faults import StepFault
from test.utils.tiny_models import write_tiny_hf

MODEL = "tiny"
USER = [{"role": "user", "content": "Tell me a story."}]
GREEDY = {"model": MODEL, "messages": USER, "temperature": 0, "max_tokens": 12,
          "ignore_eos": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = write_tiny_hf(tmp_path_factory.mktemp("tiny-faults"), "qwen2")
    engine = LLMEngine(EngineArgs(model=str(path), kv_cache_tokens=1024, max_num_seqs=8))
    with RunningServer(engine, served_model_name=MODEL) as srv:
        yield srv


def greedy_text(srv: RunningServer) -> str:
    status, body = srv.request("POST", "/v1/chat/completions", GREEDY)
    assert status == 200, body
    return body["choices"][0]["message"]["content"]


def test_step_when_it_raises_then_500_error_body_and_next_request_gets_same_text(server):
    before = greedy_text(server)
    server.async_engine.engine.executor.after_step = StepFault(steps=1)
    status, body = server.request("POST", "/v1/chat/completions", GREEDY)
    assert status == 500, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "InjectedFault" in body["error"]["message"]
    assert greedy_text(server) == before
    m = server.wait_idle()
    assert m["llaisys_kv_cache_used_blocks"] == 0
    assert m["llaisys_requests_total{finish_reason=error}"] >= 1


def test_stream_when_a_step_raises_mid_stream_then_error_event_done_and_blocks_freed(server):
    before = greedy_text(server)
    conn, resp = open_stream(server.port, "/v1/chat/completions",
                             {**GREEDY, "max_tokens": 200, "stream": True})
    assert resp.status == 200
    read_events(resp, 3)
    server.async_engine.engine.executor.after_step = StepFault(steps=1)
    rest = read_events(resp, 10_000)
    conn.close()
    assert rest[-1] == "[DONE]"
    errors = [json.loads(e)["error"] for e in rest[:-1] if '"error"' in e]
    assert len(errors) == 1 and errors[0]["code"] == "internal_error"
    assert "InjectedFault" in errors[0]["message"]
    assert greedy_text(server) == before
    assert server.wait_idle()["llaisys_kv_cache_used_blocks"] == 0
