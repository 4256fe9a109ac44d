"""Opt-in wall-clock split of engine steps by phase (LLAISYS_PROFILE_STEPS=1, or
``LLMEngine.profiler = StepProfiler()``).

Phases of one step: schedule (scheduler decision and bookkeeping after the step), prepare
(batch arrays), forward (the core's decode, sampling included), logits (penalties and
logprobs on requested logits rows), output (token append, detokenization, stop checks,
chunks) and caller (the time between two steps spent by whoever drives the engine:
LLM.generate's loop, the server's engine thread).
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass

PHASES = ("schedule", "prepare", "forward", "logits", "output", "caller")
# Steps kept (the latest): a server profiled for days holds a bounded window.
MAX_RECORDS = 100_000


@dataclass
class StepRecord:
    kind: str  # "prefill" | "decode"
    num_seqs: int
    seconds: dict[str, float]  # phase -> seconds


class StepProfiler:
    def __init__(self) -> None:
        self.records: deque[StepRecord] = deque(maxlen=MAX_RECORDS)
        self._last_end: float | None = None

    def record(self, kind: str, num_seqs: int, start: float, seconds: dict[str, float]) -> None:
        """One step that began at `start` (perf_counter) and ends now."""
        end = time.perf_counter()
        caller = 0.0 if self._last_end is None else max(0.0, start - self._last_end)
        self._last_end = end
        self.records.append(StepRecord(kind, num_seqs, {**seconds, "caller": caller}))

    def idle(self) -> None:
        """The driver waited for work: the gap until the next step is not engine overhead."""
        self._last_end = None

    def _steps(self, kind: str, num_seqs: int | None) -> tuple[int | None, list[StepRecord]]:
        """The steps of `kind` with `num_seqs` sequences (None: the largest batch seen)."""
        steps = [r for r in self.records if r.kind == kind]
        if num_seqs is None and steps:
            num_seqs = max(r.num_seqs for r in steps)
        return num_seqs, [r for r in steps if r.num_seqs == num_seqs]

    def split(self, kind: str = "decode", num_seqs: int | None = None) -> dict[str, float]:
        """Median seconds per phase over the steps of `kind` with `num_seqs` sequences
        (None: the largest batch seen for that kind); empty if there are none."""
        return _medians(self._steps(kind, num_seqs)[1])

    def format_split(self, kind: str = "decode", num_seqs: int | None = None) -> str:
        num_seqs, steps = self._steps(kind, num_seqs)
        split = _medians(steps)
        if not split:
            return f"{kind}: no steps recorded"
        count = len(steps)
        total = sum(split.values())
        outside = total - split["forward"]
        cells = ", ".join(f"{p} {1e3 * s:.2f} ms ({100 * s / total:.1f}%)"
                          for p, s in split.items())
        return (f"{kind} step at batch {num_seqs} (median of {count}): {1e3 * total:.2f} ms = "
                f"{cells}; outside the core forward {100 * outside / total:.1f}%")


def _medians(steps: list[StepRecord]) -> dict[str, float]:
    """Median seconds per phase over steps; empty if there are none."""
    if not steps:
        return {}
    return {p: statistics.median(r.seconds.get(p, 0.0) for r in steps) for p in PHASES}
