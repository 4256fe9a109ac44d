"""llaisysModelDecodeAsync and llaisysModelSynchronize (Model.decode_async): a queued step
gives what a synchronous one gives; a model holds one pending step, which any later decode
call waits for; an error found before a step runs leaves nothing new pending and the cache
as it was."""

from __future__ import annotations

import numpy as np
import pytest

from llaisys.errors import InvalidBatchError
from llaisys.models import Model
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.hf_reference import VOCAB, tiny_model

GREEDY = {"temperature": 0.0}
LAYOUTS = ["slot", "block"]


@pytest.fixture(scope="module")
def model(test_device: str) -> Model:
    return tiny_model("qwen2", device=test_device)[0]


def prompt(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


def greedy_ids(model: Model, layout: str, tokens: list[int], steps: int, queued: bool
               ) -> list[int]:
    """The prompt's next token, then `steps` greedy decode steps of one token each (the
    GPU's graph steps), each run by decode or by decode_async + wait."""
    run = CacheRunner(model, layout)
    ids, chunk = [], SeqChunk(0, tokens)
    for _ in range(steps + 1):
        batch = run.batch([chunk], sampling=GREEDY, want_logits=False)
        result = (model.decode_async(run.kv, batch).wait() if queued
                  else model.decode(run.kv, batch))
        ids.append(int(result.token_ids[0]))
        chunk = SeqChunk(0, [ids[-1]], start=chunk.start + len(chunk.tokens))
    return ids


@pytest.mark.parametrize("layout", LAYOUTS)
def test_greedy_steps_when_queued_and_waited_then_same_ids_as_synchronous(model, layout):
    toks = prompt(1, 9)
    want = greedy_ids(model, layout, toks, 6, queued=False)
    assert greedy_ids(model, layout, toks, 6, queued=True) == want


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pending_step_when_another_decode_is_queued_then_it_completes_first_unchanged(
        model, layout):
    a, b = prompt(2, 7), prompt(3, 5)
    want_a = greedy_ids(model, layout, a, 1, queued=False)
    want_b = greedy_ids(model, layout, b, 0, queued=False)
    run = CacheRunner(model, layout)
    first = model.decode_async(run.kv, run.batch([SeqChunk(0, a)], sampling=GREEDY,
                                                 want_logits=False))
    # Not waited for: the next call waits for it inside the core.
    second = model.decode_async(run.kv, run.batch([SeqChunk(1, b)], sampling=GREEDY,
                                                  want_logits=False))
    assert first.completed and not second.completed
    third = model.decode_async(run.kv, run.batch(
        [SeqChunk(0, [int(first.wait().token_ids[0])], start=len(a))], sampling=GREEDY,
        want_logits=False))
    assert [int(first.wait().token_ids[0]), int(third.wait().token_ids[0])] == want_a
    assert int(second.wait().token_ids[0]) == want_b[0]
    assert third.completed


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pending_step_when_the_next_batch_is_invalid_then_it_raises_and_the_step_is_kept(
        model, layout):
    toks = prompt(4, 6)
    want = greedy_ids(model, layout, toks, 0, queued=False)
    run = CacheRunner(model, layout)
    pending = model.decode_async(run.kv, run.batch([SeqChunk(0, toks)], sampling=GREEDY,
                                                   want_logits=False))
    used = run.kv.stats().used
    bad = run.batch([SeqChunk(1, [VOCAB + 3])], sampling=GREEDY, want_logits=False)
    with pytest.raises(InvalidBatchError, match="out of range"):
        model.decode_async(run.kv, bad)
    assert run.kv.stats().used == used  # the failed call placed nothing
    assert pending.completed and int(pending.wait().token_ids[0]) == want[0]
    model.synchronize()  # nothing pending: returns at once
    # The model keeps decoding: the sequence continues from its pending token.
    nxt = model.decode(run.kv, run.batch([SeqChunk(0, want[:1], start=len(toks))],
                                         sampling=GREEDY, want_logits=False))
    assert int(nxt.token_ids[0]) == greedy_ids(model, layout, toks, 1, queued=False)[1]
