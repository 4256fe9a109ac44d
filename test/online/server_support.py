"""Run the OpenAI server on 127.0.0.1 (a free port) in this process, and talk to it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import openai
import uvicorn

from llaisys.server.async_engine import AsyncLLMEngine
from llaisys.server.metrics import ServerMetrics, parse_metrics
from llaisys.server.openai_server import ServerConfig, create_app

MODEL = "test-model"


class RunningServer:
    """A uvicorn server over ``engine`` in a background thread (a context manager)."""

    def __init__(self, engine: Any, *, served_model_name: str = MODEL, **limits: Any) -> None:
        self.metrics_registry = ServerMetrics()
        self.async_engine = AsyncLLMEngine(engine, metrics=self.metrics_registry)
        self.config = ServerConfig.for_engine(engine, served_model_name, **limits)
        app = create_app(self.async_engine, self.config, self.metrics_registry)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def client(self, **kw: Any) -> openai.OpenAI:
        kw.setdefault("api_key", "unused")
        return openai.OpenAI(base_url=self.url + "/v1", max_retries=0, timeout=60, **kw)

    def request(self, method: str, path: str, body: bytes | str | dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A raw HTTP request; returns (status, parsed JSON body or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        if isinstance(body, dict):
            body = json.dumps(body)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", errors="replace")
        conn.close()
        try:
            return resp.status, json.loads(data)
        except json.JSONDecodeError:
            return resp.status, data

    def metrics(self) -> dict[str, float]:
        """Prometheus samples by name (with labels rendered as name{k=v,...})."""
        status, text = self.request("GET", "/metrics")
        assert status == 200
        return parse_metrics(text)

    def wait_idle(self, timeout: float = 30.0) -> dict[str, float]:
        """Wait until no request runs or waits and no KV block is used; return metrics."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            idle = (m["llaisys_kv_cache_used_blocks"] == 0 and m["llaisys_num_requests_running"]
                    == 0 and m["llaisys_num_requests_waiting"] == 0)
            if idle or time.monotonic() > deadline:
                return m
            time.sleep(0.05)


def open_stream(port: int, path: str, body: dict[str, Any]) -> tuple[http.client.HTTPConnection,
                                                                       http.client.HTTPResponse]:
    """Start a streaming request and return the open connection and response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def read_events(resp: http.client.HTTPResponse, count: int) -> list[str]:
    """Read ``count`` SSE data payloads."""
    events = []
    while len(events) < count:
        line = resp.readline().decode()
        if not line:
            break
        if line.startswith("data: "):
            events.append(line[6:].strip())
    return events
