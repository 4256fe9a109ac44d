"""The short soak: scripts/soak.py against a real server process over a tiny random Qwen2,
64 concurrent clients, 160 requests with random lengths, cancels and disconnects. It exits
non-zero when a check fails (a 5xx, a request without a finish reason, a KV block still used
when idle, resident memory growing more than 5% after warm-up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test.utils.tiny_models import write_tiny_hf

ROOT = Path(__file__).resolve().parents[2]


def test_soak_when_64_clients_cancel_and_disconnect_then_every_check_passes(tmp_path):
    model = write_tiny_hf(tmp_path / "tiny", "qwen2")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--model", str(model),
         "--requests", "160", "--concurrency", "64", "--prompt-words", "1", "40", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert "[ok] KV cache empty when idle" in report and "FAIL" not in report, report
