"""Clients that misbehave slowly: one that never reads its stream, one that sends its body
a piece at a time. Neither blocks the others, and each one's KV blocks are freed. And a
client that reads lines the way requests and httpx do still gets whole events."""

from __future__ import annotations

import json
import socket
import time

from llaisys.server.openai_server import _sse
from test.online.fake_engine import FakeEngine
from test.online.server_support import MODEL, RunningServer

USER = [{"role": "user", "content": "hello"}]


def raw_post(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode())
    return sock


def test_stream_when_client_never_reads_then_others_served_and_disconnect_frees_kv():
    fake = FakeEngine(max_model_len=16384, num_blocks=8192, step_delay=0.0005)
    with RunningServer(fake) as srv:
        body = json.dumps({"model": MODEL, "messages": USER, "stream": True,
                           "max_tokens": 12000, "ignore_eos": True}).encode()
        sock = raw_post(srv.port, body)
        sock.sendall(body)  # ... and never read the answer
        deadline = time.monotonic() + 30
        while fake.steps < 3000:  # far more output than the socket buffers hold
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = srv.client().chat.completions.create(model=MODEL, messages=USER, max_tokens=4)
        assert r.choices[0].message.content == "You "
        assert srv.metrics()["llaisys_kv_cache_used_blocks"] > 0  # the stalled one
        sock.close()
        m = srv.wait_idle()
        assert m["llaisys_kv_cache_used_blocks"] == 0
        assert m["llaisys_requests_total{finish_reason=abort}"] == 1


def test_body_when_sent_slowly_then_others_served_meanwhile_and_it_completes():
    with RunningServer(FakeEngine()) as srv:
        body = json.dumps({"model": MODEL, "messages": USER, "max_tokens": 3}).encode()
        sock = raw_post(srv.port, body)
        sock.sendall(body[:10])
        time.sleep(0.3)
        r = srv.client().chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
        assert r.choices[0].message.content == "Yo"
        for i in range(10, len(body), 7):
            sock.sendall(body[i:i + 7])
            time.sleep(0.01)
        sock.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            data += part
        sock.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(payload)["choices"][0]["message"]["content"] == "You"
        assert srv.wait_idle()["llaisys_kv_cache_used_blocks"] == 0



def test_sse_event_when_text_holds_unicode_line_breaks_then_one_line_for_splitlines():
    text = "a\u2028b\x85c\u2029d\n"
    event = _sse({"choices": [{"delta": {"content": text}}]})
    lines = event.splitlines()  # how requests' and httpx's iter_lines cut a stream
    assert lines[0].startswith("data: ") and lines[1:] == [""]
    assert json.loads(lines[0][len("data: "):])["choices"][0]["delta"]["content"] == text
