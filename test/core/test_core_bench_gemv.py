"""scripts/bench_gemv.py refuses arguments that would make its figures meaningless (a zero
would divide the timings by 0) before it looks for a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_gemv.py"


@pytest.mark.parametrize("args", [["--rows", "0"], ["--calls", "-3"], ["--bandwidth", "0"],
                                  ["--rows", "two"]])
def test_bad_argument_when_bench_gemv_then_usage_error_names_it(args: list[str]):
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert f"argument {args[0]}" in run.stderr
    assert "no CUDA device" not in run.stderr


def test_overlapping_and_separate_kernels_when_covered_us_then_overlap_counts_once():
    pytest.importorskip("torch")
    from torch.autograd import DeviceType

    sys.path.insert(0, str(SCRIPT.parent))
    from bench_gemv import covered_us

    def kernel(start: float, end: float, device=DeviceType.CUDA):
        span = type("Span", (), {"start": start, "end": end})()
        return type("Event", (), {"device_type": device, "time_range": span})()

    class Profile:
        def events(self):  # a call overlapping the one before, a gap, one inside another
            return [kernel(20, 25), kernel(0, 10), kernel(5, 12), kernel(21, 22),
                    kernel(30, 90, DeviceType.CPU)]

    assert covered_us(Profile()) == 17.0
