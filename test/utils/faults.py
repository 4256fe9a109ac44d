"""Fault injection: into the engine's model step (Executor.after_step), raising for the next
steps or for the steps that run chosen requests and remembering which requests each failed;
and into the core's forward pass (llaisysModelFailAtLayer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llaisys.engine.scheduler import SchedulerOutput
from llaisys.errors import check
from llaisys.libllaisys import LIB
from llaisys.models import Model


@contextmanager
def forward_stopped_at(model: Model, layer: int) -> Iterator[None]:
    """Inside the block, the model's next forward pass stops as it reaches `layer`: its
    decode call raises LlaisysError ("stopped at layer ...") after the layers before it
    queued their work. Disarmed on leaving, so a stop no call reached cannot leak."""
    check(LIB.llaisysModelFailAtLayer(model.handle, layer))
    try:
        yield
    finally:
        check(LIB.llaisysModelFailAtLayer(model.handle, -1))


class InjectedFault(RuntimeError):
    """The failure a StepFault raises inside a model step."""


class StepFault:
    """Install with ``engine.executor.after_step = StepFault(...)``.

    skip: steps that pass before the first failure; steps: how many consecutive steps fail
    after that; request_ids: also fail every step that runs one of these requests (each
    id once).
    """

    def __init__(self, *, skip: int = 0, steps: int = 0, request_ids: set[str] | None = None):
        self.skip, self.steps = skip, steps
        self.request_ids = set(request_ids or ())
        self.failed: set[str] = set()  # requests of the steps that failed

    def __call__(self, sched: SchedulerOutput) -> None:
        running = {s.request.request_id for s in sched.seqs}
        hit = running & self.request_ids
        if self.skip > 0 and not hit:
            self.skip -= 1
            return
        if not hit and self.steps <= 0:
            return
        if hit:
            self.request_ids -= hit
        else:
            self.steps -= 1
        self.failed |= running
        raise InjectedFault(f"injected fault in a step of {sorted(running)}")
