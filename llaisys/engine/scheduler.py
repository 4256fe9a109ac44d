"""RequestScheduler: decides which sequences run in the next step and how many tokens each.

Prefill first (the seed's flowchart): running sequences in the middle of a chunked prompt,
then admissions from the waiting queue, within max_num_seqs and max_num_batched_tokens; a
prompt longer than the remaining token budget is computed in chunks. When no prefill can be
scheduled, every running sequence decodes one token. When KV blocks run out, the newest
running sequence is preempted by recompute: its blocks are freed and it goes back to the
head of the waiting queue, its generated tokens kept to be recomputed with the prompt.
A request that can never fit is finished_aborted with a reason instead of waiting forever.

With mixed_batches (vLLM v1's chunked prefill), a step first decodes every running sequence
and fills the rest of the token budget with prompt chunks: running sequences keep
streaming while new prompts are computed, and a small budget keeps each step short, so
arrivals start decoding one after another instead of in one long prefill step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .block_manager import BlockManager
from .request_state import RequestStatus
from .sequence import Sequence


@dataclass
class SchedulerOutput:
    kind: str = "idle"  # "prefill" (prompt tokens, maybe with decodes) | "decode" | "idle"
    seqs: list[Sequence] = field(default_factory=list)
    num_tokens: list[int] = field(default_factory=list)  # tokens each computes this step
    aborted: list[Sequence] = field(default_factory=list)  # impossible, finished_aborted
    preempted: list[Sequence] = field(default_factory=list)
    num_decodes: int = 0  # leading entries of seqs that decode one token (mixed batches)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens this step computes (the entries after the decodes)."""
        return sum(self.num_tokens[self.num_decodes:])


class RequestScheduler:
    def __init__(self, block_manager: BlockManager, *, max_num_seqs: int,
                 max_num_batched_tokens: int, max_model_len: int, mixed_batches: bool = False):
        self.bm = block_manager
        self.mixed_batches = mixed_batches
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence, *, front: bool = False) -> None:
        if front:
            self.waiting.appendleft(seq)
        else:
            self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def impossible_reason(self, seq: Sequence) -> str | None:
        """Why seq can never be served, or None."""
        prompt, max_tokens = len(seq.request.prompt_token_ids), seq.params.max_tokens
        need = prompt + max_tokens
        if need > self.max_model_len:
            return (f"prompt ({prompt} tokens) + max_tokens ({max_tokens}) exceeds "
                    f"max_model_len ({self.max_model_len})")
        if self.bm.blocks_for(need) > self.bm.num_blocks:
            return (f"prompt ({prompt} tokens) + max_tokens ({max_tokens}) needs "
                    f"{self.bm.blocks_for(need)} KV blocks, the cache has {self.bm.num_blocks}")
        return None

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        if self.mixed_batches:
            budget = self._decode(out, budget)
            out.num_decodes = len(out.seqs)
        for seq in list(self.running):  # chunked prompts in progress
            if budget == 0:
                break
            # The token count first: in a decode step it rules out every sequence.
            if len(seq.token_ids) - seq.num_computed_tokens > 1 and \
                    seq.state.status is RequestStatus.RUNNING:
                n = min(seq.num_uncomputed_tokens, budget)
                # While others decode, a prompt chunk short of blocks waits for those they
                # free: preempting would take a sequence that decodes in this step (mixed), or
                # the chunk's own, recomputed from its start while the decodes wait (without
                # a prefix cache, for ever).
                if not self.bm.can_allocate(seq, seq.num_computed_tokens + n) and (
                        self.mixed_batches or self._any_decoding()):
                    continue
                if self._reserve(seq, n, out):
                    out.seqs.append(seq)
                    out.num_tokens.append(n)
                    budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if reason := self.impossible_reason(seq):
                self.waiting.popleft()
                seq.state.finish_aborted(reason)
                out.aborted.append(seq)
                continue
            cached = [] if seq.block_table else self.bm.cached_prefix(seq)
            computed = len(cached) * self.bm.block_size if cached else seq.num_computed_tokens
            n = min(seq.num_tokens - computed, budget)
            if not self.bm.can_allocate(seq, computed + n, cached):
                if self._release_waiting_blocks():
                    continue  # the head again, with those blocks free (or cached)
                break
            self.waiting.popleft()
            self.bm.allocate(seq, computed + n, cached)
            seq.state.admit()
            self.running.append(seq)
            out.seqs.append(seq)
            out.num_tokens.append(n)
            budget -= n
        if len(out.seqs) > out.num_decodes:
            out.kind = "prefill"
            return out
        if not self.mixed_batches:
            self._decode(out, budget)
            out.num_decodes = len(out.seqs)
        out.kind = "decode" if out.seqs else "idle"
        return out

    def _decode(self, out: SchedulerOutput, budget: int) -> int:
        """One token for every running sequence whose prompt is computed; the budget left."""
        # Once per running sequence per step: attributes rather than properties, and the
        # usual case (the last block has room for the token) checked before _reserve. A
        # sequence whose pending tokens (async scheduling) reach its length limit finishes
        # with them.
        bs = self.bm.block_size
        seqs, num_tokens = out.seqs, out.num_tokens
        for seq in list(self.running):
            if budget == 0:
                break
            computed, length = seq.num_computed_tokens, len(seq.token_ids)
            if (length - computed == 1 and length < seq.max_num_tokens
                    and seq.state.status is RequestStatus.RUNNING
                    and (computed < len(seq.block_table) * bs or self._reserve(seq, 1, out))):
                seqs.append(seq)
                num_tokens.append(1)
                budget -= 1
        return budget

    def advance(self, out: SchedulerOutput) -> None:
        """Records a launched step: the scheduled tokens count as computed (the engine
        publishes their full blocks in the prefix cache once the step has succeeded)."""
        for seq, n in zip(out.seqs, out.num_tokens, strict=True):
            seq.num_computed_tokens += n

    def finish(self, seq: Sequence) -> None:
        """Removes a finished sequence from the queues and frees its blocks."""
        seq.drop_pending_tokens()
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self.bm.free(seq)

    def _reserve(self, seq: Sequence, n: int, out: SchedulerOutput) -> bool:
        """Blocks for n more tokens of a running seq, preempting the newest running sequences
        while they are short; False when seq itself had to be preempted."""
        # The decode loop above checks this case inline before calling: keep them alike.
        if self.bm.blocks_for(seq.num_computed_tokens + n) <= len(seq.block_table):
            return True  # most decode steps: the last block has room
        while not self.bm.can_allocate(seq, seq.num_computed_tokens + n):
            victim = self.running[-1]
            self._preempt(victim)
            out.preempted.append(victim)
            if victim is seq:
                return False
        self.bm.allocate(seq, seq.num_computed_tokens + n)
        return True

    def _any_decoding(self) -> bool:
        return any(len(s.token_ids) - s.num_computed_tokens == 1 for s in self.running)

    def _release_waiting_blocks(self) -> bool:
        """Frees the blocks waiting sequences hold (forked samples hold their prompt's
        shared blocks until admitted; they find them in the prefix cache if still there).
        Otherwise such blocks could starve the head of the queue with nothing running to
        free others. True if any were held."""
        holders = [s for s in self.waiting if s.block_table]
        for seq in holders:
            self.bm.free(seq)
        return bool(holders)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.bm.free(seq)
        seq.state.preempt()
        self.waiting.appendleft(seq)
        self.num_preemptions += 1
