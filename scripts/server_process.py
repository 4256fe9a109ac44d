"""A llaisys server in a child process, for the scripts that load one (bench_serving.py,
soak.py): started on a free local port and returned once /health answers."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(server_args: list[str], *, timeout: float, log: IO[str] | None = None,
                 cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`python -m llaisys.server *server_args` on 127.0.0.1 (output to log, or inherited);
    returns the process and its base URL. SystemExit if it dies or is not healthy in time."""
    port = free_port()
    # The caller's arguments last, so that they may override the log level.
    cmd = [sys.executable, "-m", "llaisys.server", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *server_args]
    print("starting:", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT if log else None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become healthy")
