"""Request (what the user asked for) and Sequence (one of its n samples, the unit the
scheduler batches)."""

from __future__ import annotations

import itertools
import time

from .detokenizer import IncrementalDetokenizer
from .request_state import RequestState
from .sampling_params import SamplingParams

_seq_counter = itertools.count()

# An entry of token_ids (one of the last two) while a launched step is sampling it (async
# scheduling: later steps are scheduled and queued before the id is known); never a valid id.
PENDING_TOKEN = -1


class Sequence:
    """One sample: prompt + generated token ids, KV progress and its life cycle.

    num_computed_tokens counts tokens whose K/V are in the cache (or are being written by a
    launched step); a step computes token_ids[num_computed_tokens:] (a prompt chunk, or the
    last sampled token) and, when it reaches the end, samples the next token, held as a
    PENDING_TOKEN until the step finishes. After a preemption everything is recomputed.
    """

    def __init__(self, request: Request, index: int, detokenizer: IncrementalDetokenizer,
                 max_model_len: int | None = None):
        self.seq_id = next(_seq_counter)
        self.request = request
        self.index = index
        self.token_ids = list(request.prompt_token_ids)
        self.num_prompt_tokens = len(self.token_ids)
        # Length at which it finishes by max_tokens or max_model_len, whichever comes first.
        self.max_num_tokens = self.num_prompt_tokens + request.params.max_tokens
        if max_model_len is not None:
            self.max_num_tokens = min(self.max_num_tokens, max_model_len)
        self.num_computed_tokens = 0
        self.num_cached_tokens = 0  # prompt tokens taken from the prefix cache
        self.block_table: list[int] = []
        self.batch_row: int | None = None  # the model runner's row while it holds blocks
        self.sampled_row = 0  # its output row in the last launched step that sampled for it
        self.num_hashed_blocks = 0  # leading blocks published in the prefix cache
        self.last_block_hash: int | None = None
        self.state = RequestState()
        self.detokenizer = detokenizer
        self.logprobs: list[dict[int, float]] | None = (
            [] if request.params.logprobs is not None else None)

    @property
    def params(self) -> SamplingParams:
        return self.request.params

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def num_uncomputed_tokens(self) -> int:
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def finished(self) -> bool:
        return self.state.finished

    def drop_pending_tokens(self) -> None:
        """Forgets the tokens launched steps sample for it (it finished meanwhile)."""
        while self.token_ids[-1] == PENDING_TOKEN:
            self.token_ids.pop()

    def __repr__(self) -> str:
        return (f"Sequence({self.request.request_id}#{self.index}, {self.state.status.value}, "
                f"tokens={self.num_tokens}, computed={self.num_computed_tokens})")


class Request:
    """A submitted prompt with its params; owns n sequences (sample 0 leads, the others fork
    from it once its prompt is in the cache)."""

    def __init__(self, request_id: str, prompt: str | None, prompt_token_ids: list[int],
                 params: SamplingParams, seed: int, stop_token_ids: frozenset[int]):
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.params = params
        self.seed = seed  # params.seed, or one drawn from the engine's generator
        self.stop_token_ids = stop_token_ids  # EOS (unless ignore_eos) and params' ids
        self.arrival_time = time.time()
        self.first_token_time: float | None = None
        self.finish_time: float | None = None
        self.seqs: list[Sequence] = []
        self.unforked: list[Sequence] = []  # samples 1..n-1 until sample 0's prompt is computed

    @property
    def finished(self) -> bool:
        return all(s.finished for s in self.seqs)
