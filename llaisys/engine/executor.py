"""Executor -> Worker -> ModelRunner: where a scheduler decision meets the model.

The Executor is the engine's only door to the model (one in-process Worker today; the
seam where tensor-parallel workers would go). The Worker owns the device state: the model
and its KV cache. The ModelRunner builds batches and samples.
"""

from __future__ import annotations

from collections.abc import Callable

from ..models.model import Model
from .config import EngineConfig
from .model_runner import LaunchedStep, ModelOutput, ModelRunner, PreparedStep
from .scheduler import SchedulerOutput
from .sequence import Sequence


class Worker:
    def __init__(self, model: Model, config: EngineConfig):
        self.model = model
        self.kv = model.create_kv_cache(
            layout=config.kv_layout, n_cells=config.num_blocks * config.block_size,
            block_size=config.block_size, n_seq_max=config.max_num_seqs)
        self.runner = ModelRunner(
            model, self.kv, layout=config.kv_layout, block_size=config.block_size,
            max_num_seqs=config.max_num_seqs,
            max_num_batched_tokens=config.max_num_batched_tokens,
            max_model_len=config.max_model_len)

    def release(self, seq: Sequence, block_ids: list[int]) -> None:
        self.runner.release(seq, block_ids)


class Executor:
    def __init__(self, model: Model, config: EngineConfig):
        self.worker = Worker(model, config)
        # Fault injection for tests: called with each step's decision after the model ran
        # (its KV is written, its tokens sampled); what it raises fails the step as a model
        # error would.
        self.after_step: Callable[[SchedulerOutput], None] | None = None

    def prepare(self, sched: SchedulerOutput) -> PreparedStep:
        return self.worker.runner.prepare(sched)

    def launch(self, step: PreparedStep) -> LaunchedStep:
        """Queues the step on the device; returns before its outputs exist (GPU)."""
        return self.worker.runner.launch(step)

    def finish(self, step: LaunchedStep, sched: SchedulerOutput) -> ModelOutput:
        """Waits for a launched step's sampled tokens."""
        self.worker.runner.wait(step)
        if self.after_step is not None:  # before the tokens are put in place: none is kept
            self.after_step(sched)
        return self.worker.runner.finish(step)

    def kv_cache_bytes(self) -> int:
        return self.worker.kv.stats().bytes

    def release(self, seq: Sequence, block_ids: list[int]) -> None:
        """The BlockManager freed seq's blocks (block_ids: those now unreferenced)."""
        self.worker.release(seq, block_ids)
