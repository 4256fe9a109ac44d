"""The OpenAI-compatible HTTP surface over the fake engine: response shapes, SSE framing,
usage, n, logprobs, errors (every bad input a 4xx with OpenAI's error body), limits, auth,
admission and engine failures. The real-model behaviour is in test_online_real_model.py."""

from __future__ import annotations

import http.client
import json
import threading
import time

import openai
import pytest

from test.online.fake_engine import FakeEngine
from test.online.server_support import MODEL, RunningServer, open_stream, read_events

USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def server():
    with RunningServer(FakeEngine(max_model_len=256), max_n=4, max_tokens=200,
                       max_prompt_tokens=220, max_body_bytes=64 * 1024) as srv:
        yield srv


def sse_payloads(srv: RunningServer, path: str, body: dict) -> list[str]:
    conn, resp = open_stream(srv.port, path, body)
    assert resp.status == 200
    assert resp.getheader("content-type", "").startswith("text/event-stream")
    raw = resp.read().decode()
    conn.close()
    events = raw.split("\n\n")
    assert events[-1] == ""
    assert all(e.startswith("data: ") for e in events[:-1]), raw[:500]
    return [e[len("data: "):] for e in events[:-1]]


def assert_error_body(body: object, status: int) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert status < 500


# ------------------------------------------------------------------ shapes
def test_chat_when_not_streaming_then_response_has_openai_shape(server):
    r = server.client().chat.completions.create(model=MODEL, messages=USER, temperature=0)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.model == MODEL and isinstance(r.created, int)
    (choice,) = r.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("You said 'hello there'")
    assert r.usage.completion_tokens == len(choice.message.content.encode()) + 1  # + EOS
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_when_streaming_then_role_first_content_then_finish_and_done(server):
    payloads = sse_payloads(server, "/v1/chat/completions",
                            {"model": MODEL, "messages": USER, "stream": True, "max_tokens": 6,
                             "temperature": 0})
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "length"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "You sa"


def test_chat_when_include_usage_then_only_last_chunk_carries_usage(server):
    stream = server.client().chat.completions.create(
        model=MODEL, messages=USER, stream=True, max_tokens=5,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == 5
    assert last.usage.prompt_tokens > 0


def test_completions_when_prompt_forms_vary_then_each_gets_choices(server):
    client = server.client()
    by_text = client.completions.create(model=MODEL, prompt="abc", max_tokens=4)
    assert by_text.object == "text_completion" and by_text.id.startswith("cmpl-")
    assert by_text.choices[0].text == "You "
    ids = [257, 97, 98, 99]  # BOS + "abc", as the fake tokenizer encodes "abc"
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=4)
    assert by_ids.choices[0].text == by_text.choices[0].text
    many = client.completions.create(model=MODEL, prompt=["abc", "xyz"], max_tokens=20, n=2,
                                     temperature=0)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert all(c.finish_reason == "length" for c in many.choices)
    assert "abc" in many.choices[0].text and "xyz" in many.choices[2].text
    assert many.usage.completion_tokens == 80
    batch = client.completions.create(model=MODEL, prompt=[ids, ids], max_tokens=3)
    assert [c.text for c in batch.choices] == ["You", "You"]


def test_completions_when_streaming_several_prompts_then_choices_interleave_by_index(server):
    payloads = sse_payloads(server, "/v1/completions",
                            {"model": MODEL, "prompt": ["abc", "xyz"], "stream": True,
                             "max_tokens": 20, "temperature": 0,
                             "stream_options": {"include_usage": True}})
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    texts = {0: "", 1: ""}
    for c in chunks[:-1]:
        (choice,) = c["choices"]
        texts[choice["index"]] += choice["text"]
    assert "abc" in texts[0] and "xyz" in texts[1]
    assert chunks[-1]["usage"]["completion_tokens"] == 40


def test_chat_when_n_is_2_then_two_choices_with_own_indices(server):
    r = server.client().chat.completions.create(model=MODEL, messages=USER, n=2, seed=7,
                                                max_tokens=50)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content != r.choices[1].message.content  # seeded per sample


def test_chat_when_stop_string_given_then_text_ends_before_it(server):
    r = server.client().chat.completions.create(model=MODEL, messages=USER, stop=["'"],
                                                temperature=0)
    assert r.choices[0].message.content == "You said "
    assert r.choices[0].finish_reason == "stop"


def test_chat_when_logprobs_asked_then_each_token_has_top_logprobs(server):
    r = server.client().chat.completions.create(model=MODEL, messages=USER, max_tokens=4,
                                                logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert [t.token for t in content] == ["Y", "o", "u", " "]
    for t in content:
        assert t.logprob == -0.5 and t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].logprob >= t.top_logprobs[-1].logprob


def test_completions_when_logprobs_asked_then_legacy_logprobs_shape(server):
    r = server.client().completions.create(model=MODEL, prompt="abc", max_tokens=3,
                                           logprobs=2)
    lp = r.choices[0].logprobs
    assert lp.tokens == ["Y", "o", "u"] and lp.text_offset == [0, 1, 2]
    assert lp.token_logprobs == [-0.5] * 3
    assert all(len(top) == 3 for top in lp.top_logprobs)  # top 2 + the sampled token


def test_models_and_health_when_asked_then_served_model_listed(server):
    models = server.client().models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert server.client().models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        server.client().models.retrieve("other")
    assert server.request("GET", "/health") == (200, {"status": "ok"})


def test_unknown_fields_when_present_then_ignored(server):
    status, body = server.request("POST", "/v1/chat/completions",
                                  {"messages": USER, "max_tokens": 2, "frobnicate": True,
                                   "user": "u1", "tools": None})
    assert status == 200 and body["choices"][0]["message"]["content"] == "Yo"


# ------------------------------------------------------------------ bad input
BAD_CHAT = [
    ("malformed json", '{"messages": [', 400, None),
    ("not an object", "[1, 2]", 400, None),
    ("missing messages", {"model": MODEL}, 400, "messages"),
    ("messages mistyped", {"messages": "hi"}, 400, "messages"),
    ("empty messages", {"messages": []}, 400, "messages"),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400, None),
    ("temperature too high", {"messages": USER, "temperature": 3}, 400, "temperature"),
    ("temperature mistyped", {"messages": USER, "temperature": "hot"}, 400, "temperature"),
    ("top_p zero", {"messages": USER, "top_p": 0}, 400, "top_p"),
    ("n zero", {"messages": USER, "n": 0}, 400, "n"),
    ("n over limit", {"messages": USER, "n": 5}, 400, "n"),
    ("max_tokens zero", {"messages": USER, "max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens over limit", {"messages": USER, "max_tokens": 201}, 400, "max_tokens"),
    ("max_tokens beyond context", {"messages": USER, "max_tokens": 200,
                                   "frequency_penalty": 0}, 400, "max_tokens"),
    ("top_logprobs too many", {"messages": USER, "logprobs": True, "top_logprobs": 50}, 400,
     "top_logprobs"),
    ("penalty out of range", {"messages": USER, "presence_penalty": 9}, 400,
     "presence_penalty"),
    ("stop mistyped", {"messages": USER, "stop": 5}, 400, None),
    ("prompt too long", {"messages": [{"role": "user", "content": "x" * 300}]}, 400,
     "messages"),
    ("prompt over server limit", {"messages": [{"role": "user", "content": "x" * 210}]}, 400,
     "messages"),
    ("unknown model", {"model": "gpt-9", "messages": USER}, 404, "model"),
]


@pytest.mark.parametrize("name,body,status,param", BAD_CHAT, ids=[b[0] for b in BAD_CHAT])
def test_chat_when_input_is_bad_then_4xx_with_error_body(server, name, body, status, param):
    if name == "max_tokens beyond context":
        body = {**body, "messages": [{"role": "user", "content": "y" * 100}]}
    got, resp = server.request("POST", "/v1/chat/completions", body)
    assert got == status, resp
    assert_error_body(resp, got)
    if param is not None:
        assert resp["error"]["param"] == param


BAD_COMPLETION = [
    ("missing prompt", {"max_tokens": 2}, 400, "prompt"),
    ("empty token list", {"prompt": []}, 400, "prompt"),
    ("token id out of range", {"prompt": [1, 99999]}, 400, "prompt"),
    ("negative token id", {"prompt": [[5, -1]]}, 400, "prompt"),
    ("logprobs too many", {"prompt": "a", "logprobs": 99}, 400, "logprobs"),
    ("prompt too long", {"prompt": "z" * 400}, 400, "prompt"),
]


@pytest.mark.parametrize("name,body,status,param", BAD_COMPLETION,
                         ids=[b[0] for b in BAD_COMPLETION])
def test_completions_when_input_is_bad_then_4xx_with_error_body(server, name, body, status,
                                                                param):
    got, resp = server.request("POST", "/v1/completions", body)
    assert got == status, resp
    assert_error_body(resp, got)
    if param is not None:
        assert resp["error"]["param"] == param


def test_http_when_route_method_or_size_is_wrong_then_4xx_with_error_body(server):
    for method, path, body, status in [
        ("GET", "/v1/nothing", None, 404),
        ("GET", "/v1/chat/completions", None, 405),
        ("POST", "/v1/requests/nope/cancel", None, 404),
        ("POST", "/v1/chat/completions", json.dumps({"messages": USER, "pad": "x" * 70000}),
         413),
    ]:
        got, resp = server.request(method, path, body)
        assert got == status, (path, resp)
        assert_error_body(resp, got)


def test_openai_client_when_input_is_bad_then_typed_exceptions(server):
    client = server.client()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=USER)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, temperature=-1)
    assert info.value.body["param"] == "temperature"


def test_health_when_after_all_bad_input_then_still_ok_and_serving(server):
    assert server.request("GET", "/health") == (200, {"status": "ok"})
    r = server.client().chat.completions.create(model=MODEL, messages=USER, max_tokens=3)
    assert r.choices[0].message.content == "You"
    assert server.wait_idle()["llaisys_kv_cache_used_blocks"] == 0


# ------------------------------------------------------------------ limits, auth, failures
def test_api_key_when_set_then_401_without_it_and_health_open():
    with RunningServer(FakeEngine(), api_key="s3cret") as srv:
        with pytest.raises(openai.AuthenticationError):
            srv.client(api_key="wrong").models.list()
        got, body = srv.request("POST", "/v1/chat/completions", {"messages": USER})
        assert got == 401 and body["error"]["code"] == "invalid_api_key"
        assert srv.request("GET", "/metrics")[0] == 401
        assert srv.request("GET", "/health")[0] == 200
        assert srv.request("GET", "/")[0] == 200
        r = srv.client(api_key="s3cret").chat.completions.create(model=MODEL, messages=USER,
                                                                 max_tokens=2)
        assert r.choices[0].message.content == "Yo"


def test_waiting_queue_when_full_then_503_with_error_body_and_metrics_count_it():
    fake = FakeEngine(step_delay=0.05, max_num_seqs=1, max_waiting_requests=1)
    with RunningServer(fake) as srv:
        long = {"model": MODEL, "messages": USER, "max_tokens": 150, "ignore_eos": True,
                "stream": True}
        conn1, first = open_stream(srv.port, "/v1/chat/completions", long)
        assert first.status == 200
        ident = json.loads(read_events(first, 1)[0])["id"]
        conn2 = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn2.request("POST", "/v1/chat/completions", body=json.dumps(long),
                      headers={"Content-Type": "application/json"})  # waits in the queue
        deadline = time.monotonic() + 10
        while srv.metrics()["llaisys_num_requests_waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        got, body = srv.request("POST", "/v1/chat/completions", {**long, "stream": False})
        assert got == 503 and body["error"]["code"] == "server_overloaded"
        assert srv.request("POST", f"/v1/requests/{ident}/cancel")[0] == 200
        conn1.close()
        conn2.close()
        m = srv.wait_idle()
        assert m["llaisys_requests_rejected_total{reason=overloaded}"] == 1
        assert m["llaisys_kv_cache_used_blocks"] == 0


def test_engine_step_when_it_raises_then_500_error_body_and_next_requests_served():
    fake = FakeEngine()
    with RunningServer(fake) as srv:
        fake.fail_next_steps = 1
        got, body = srv.request("POST", "/v1/chat/completions", {"messages": USER})
        assert got == 500 and body["error"]["type"] == "server_error"
        assert "injected step failure" in body["error"]["message"]
        r = srv.client().chat.completions.create(model=MODEL, messages=USER, max_tokens=3)
        assert r.choices[0].message.content == "You"
        assert srv.request("GET", "/health") == (200, {"status": "ok"})


def test_engine_step_when_it_raises_mid_stream_then_error_event_then_done():
    fake = FakeEngine(step_delay=0.01)
    with RunningServer(fake) as srv:
        conn, resp = open_stream(srv.port, "/v1/chat/completions",
                                 {"messages": USER, "stream": True, "max_tokens": 100,
                                  "ignore_eos": True})
        read_events(resp, 3)
        fake.fail_next_steps = 1
        rest = read_events(resp, 10_000)
        conn.close()
        assert rest[-1] == "[DONE]"
        errors = [json.loads(e) for e in rest[:-1] if '"error"' in e]
        assert errors and errors[0]["error"]["code"] == "internal_error"
        assert srv.wait_idle()["llaisys_kv_cache_used_blocks"] == 0


def test_concurrent_streams_when_many_clients_then_each_receives_its_own_text():
    with RunningServer(FakeEngine(max_num_seqs=4, step_delay=0.002)) as srv:
        client = srv.client()
        results: dict[int, str] = {}

        def one(i: int) -> None:
            stream = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"q{i:02d}"}], stream=True,
                temperature=0, max_tokens=40)
            results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i in range(16):
            assert results[i].startswith(f"You said 'q{i:02d}'"), results[i]
            alone = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"q{i:02d}"}], temperature=0,
                max_tokens=40)
            assert alone.choices[0].message.content == results[i]


def test_openapi_schema_when_fetched_then_documents_400_error_bodies_not_422(server):
    status, schema = server.request("GET", "/openapi.json")
    assert status == 200
    for path in ("/v1/chat/completions", "/v1/completions"):
        responses = schema["paths"][path]["post"]["responses"]
        assert "422" not in responses
        assert responses["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}
