"""llaisysModelDecodeAsync, llaisysModelSynchronize and LlaisysBatch.prev_row
(Model.decode_async, DecodeBatch.prev_row): queued steps give what synchronous ones give;
a step may take its tokens from the previous step's samples on the device, so it can be
queued before they reach the host; at most MAX_PENDING_DECODES steps are pending, and a
call beyond that waits for the oldest; every call is a pending step, on the CPU too (its ids
are written when it is waited for), sampled or not; a failed call leaves the cache and the
ids a next step may take as they were; a device fault fails every pending step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import llaisys.models.model as model_module
from llaisys.errors import (
    DeviceError,
    InvalidArgumentError,
    InvalidBatchError,
    KvCacheFullError,
    LlaisysError,
    check,
)
from llaisys.libllaisys import LIB, llaisysStatus_t
from llaisys.models import Model
from llaisys.models.model import MAX_PENDING_DECODES
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.faults import forward_stopped_at
from test.utils.hf_reference import VOCAB, tiny_model

GREEDY = {"temperature": 0.0}
LAYOUTS = ["slot", "block"]


@pytest.fixture(scope="module")
def model(test_device: str) -> Model:
    return tiny_model("qwen2", device=test_device)[0]


def prompt(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


def queue(model: Model, run: CacheRunner, chunks: list[SeqChunk], prev_row=None, **kw):
    batch = run.batch(chunks, sampling=GREEDY, want_logits=False, **kw)
    if prev_row is not None:
        batch.prev_row = np.asarray(prev_row, dtype=np.int32)
    return model.decode_async(run.kv, batch)


def greedy_ids(model: Model, layout: str, tokens: list[int], steps: int) -> list[int]:
    """The prompt's next token, then `steps` greedy decode steps, each run synchronously."""
    run = CacheRunner(model, layout)
    ids, chunk = [], SeqChunk(0, tokens)
    for _ in range(steps + 1):
        result = model.decode(run.kv, run.batch([chunk], sampling=GREEDY, want_logits=False))
        ids.append(int(result.token_ids[0]))
        chunk = SeqChunk(0, [ids[-1]], start=chunk.start + len(chunk.tokens))
    return ids


@pytest.mark.parametrize("layout", LAYOUTS)
def test_greedy_steps_when_each_takes_the_previous_id_on_the_device_then_same_ids(model, layout):
    toks = prompt(1, 9)
    want = greedy_ids(model, layout, toks, 6)
    run = CacheRunner(model, layout)
    steps = [queue(model, run, [SeqChunk(0, toks)])]
    for i in range(6):  # queued before the step it takes its token from is waited for
        steps.append(queue(model, run, [SeqChunk(0, [0], start=len(toks) + i)], prev_row=[0]))
        assert not steps[-1].completed
    assert [int(s.wait().token_ids[0]) for s in steps] == want


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prompt_chunk_and_decode_when_taking_permuted_rows_then_match_explicit_tokens(
        model, layout):
    a, b = prompt(2, 6), prompt(3, 4)
    run = CacheRunner(model, layout)
    first = queue(model, run, [SeqChunk(0, a), SeqChunk(1, b)])
    # The next step, queued before the first is waited for: b decodes its sampled id (row 1);
    # a computes a chunk of its sampled id (row 0) and one given token.
    took = queue(model, run, [SeqChunk(1, [0], start=len(b)), SeqChunk(0, [0, 17], start=len(a))],
                 prev_row=[1, 0, -1])
    ids = first.wait().token_ids.tolist()
    explicit = CacheRunner(model, layout)
    model.decode(explicit.kv, explicit.batch([SeqChunk(0, a), SeqChunk(1, b)], sampling=GREEDY,
                                             want_logits=False))
    want = model.decode(explicit.kv, explicit.batch(
        [SeqChunk(1, [ids[1]], start=len(b)), SeqChunk(0, [ids[0], 17], start=len(a))],
        sampling=GREEDY, want_logits=False))
    assert took.wait().token_ids.tolist() == want.token_ids.tolist()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pending_steps_when_one_more_is_queued_then_the_oldest_completes_first(model, layout):
    seqs = [prompt(10 + i, 5 + i) for i in range(MAX_PENDING_DECODES + 1)]
    want = [greedy_ids(model, layout, s, 0)[0] for s in seqs]
    run = CacheRunner(model, layout, n_seq_max=len(seqs))
    steps = [queue(model, run, [SeqChunk(i, s)]) for i, s in enumerate(seqs)]
    assert steps[0].completed and not any(s.completed for s in steps[1:])
    assert [int(s.wait().token_ids[0]) for s in reversed(steps)] == want[::-1]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pending_step_when_the_next_batch_is_invalid_then_it_raises_and_the_step_is_kept(
        model, layout):
    toks = prompt(4, 6)
    want = greedy_ids(model, layout, toks, 1)
    run = CacheRunner(model, layout)
    pending = queue(model, run, [SeqChunk(0, toks)])
    used = run.kv.stats().used
    with pytest.raises(InvalidBatchError, match="out of range"):
        queue(model, run, [SeqChunk(1, [VOCAB + 3])])
    with pytest.raises(InvalidBatchError, match="prev_row 1 but the previous decode call "
                                                "sampled 1 rows"):
        queue(model, run, [SeqChunk(0, [0], start=len(toks))], prev_row=[1])
    assert run.kv.stats().used == used  # the failed calls placed nothing
    # The failed calls left the samples a step may take: the sequence continues from them.
    nxt = queue(model, run, [SeqChunk(0, [0], start=len(toks))], prev_row=[0])
    assert [int(pending.wait().token_ids[0]), int(nxt.wait().token_ids[0])] == want


def test_pending_steps_when_block_tables_widen_between_replays_then_same_ids(model):
    # On the GPU a graph step's metadata and ids pass through rotating host slots: wider
    # tables outgrow them (twice) while steps are pending, between steps that replay graphs
    # captured before.
    widths = [0, 0, 0, 2000, 2000, 2000, 8000, 8000, 0, 0]
    toks = prompt(12, 7)
    want = greedy_ids(model, "block", toks, len(widths))
    run = CacheRunner(model, "block")
    steps = [queue(model, run, [SeqChunk(0, toks)])]
    for i, width in enumerate(widths):
        batch = run.batch([SeqChunk(0, [0], start=len(toks) + i)], sampling=GREEDY,
                          want_logits=False)
        batch.prev_row = np.zeros(1, dtype=np.int32)
        if width:
            tables = np.full((len(batch.block_tables), width), -1, dtype=np.int32)
            tables[:, :batch.block_tables.shape[1]] = batch.block_tables
            batch.block_tables = tables
        steps.append(model.decode_async(run.kv, batch))
    assert [int(s.wait().token_ids[0]) for s in steps] == want


def test_step_without_sampling_when_the_next_takes_a_row_then_invalid(model):
    toks = prompt(5, 5)
    run = CacheRunner(model, "block")
    model.decode(run.kv, run.batch([SeqChunk(0, toks)]))  # logits only: nothing sampled
    with pytest.raises(InvalidBatchError, match="sampled 0 rows"):
        queue(model, run, [SeqChunk(0, [0], start=len(toks))], prev_row=[0])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sampled_step_when_a_step_without_outputs_follows_then_waiting_gives_its_ids(
        model, layout):
    a, b = prompt(6, 5), prompt(7, 12)
    want = greedy_ids(model, layout, a, 0)
    run = CacheRunner(model, layout)
    sampled = queue(model, run, [SeqChunk(0, a)])
    chunk = model.decode_async(run.kv, run.batch([SeqChunk(1, b[:8], outputs="none")],
                                                 want_logits=False))
    assert int(sampled.wait().token_ids[0]) == want[0] and not chunk.completed
    assert chunk.wait().token_ids is None


def test_slot_cache_when_full_then_the_failed_call_keeps_the_ids_a_next_step_takes(model):
    toks = prompt(8, 6)
    want = greedy_ids(model, "slot", toks, 1)
    run = CacheRunner(model, "slot", n_cells=8, n_seq_max=2)
    first = queue(model, run, [SeqChunk(0, toks)])
    with pytest.raises(KvCacheFullError):
        queue(model, run, [SeqChunk(1, prompt(9, 5))])
    nxt = queue(model, run, [SeqChunk(0, [0], start=len(toks))], prev_row=[0])
    assert [int(first.wait().token_ids[0]), int(nxt.wait().token_ids[0])] == want


@pytest.mark.parametrize("layout", LAYOUTS)
def test_steps_when_stopped_mid_forward_then_retried_with_the_id_they_give_the_same_ids(
        model, test_device, layout):
    """On the GPU, with no graph captured yet (a model of its own): step 1 stops while it is
    captured as a CUDA graph (its graph was seen once, by step 0), step 2 while it runs
    directly (its graph's first sight again). The cells the layers before the stop wrote go
    back, and the step mailbox starts over."""
    toks = prompt(13, 7)
    want = greedy_ids(model, layout, toks, 5)
    fresh = tiny_model("qwen2", device=test_device)[0]
    run = CacheRunner(fresh, layout)
    steps = [queue(fresh, run, [SeqChunk(0, toks)])]
    for i in range(5):
        start = len(toks) + i
        if i in (1, 2):
            with forward_stopped_at(fresh, 1), pytest.raises(LlaisysError,
                                                             match="stopped at layer 1"):
                queue(fresh, run, [SeqChunk(0, [0], start=start)], prev_row=[0])
            token = int(steps[-1].wait().token_ids[0])  # not taken on the device after a stop
            steps.append(queue(fresh, run, [SeqChunk(0, [token], start=start)]))
        else:
            steps.append(queue(fresh, run, [SeqChunk(0, [0], start=start)], prev_row=[0]))
    assert [int(s.wait().token_ids[0]) for s in steps] == want


def test_pending_steps_when_the_device_faults_then_every_one_raises_the_fault(
        model, monkeypatch):
    toks = prompt(10, 5)
    run = CacheRunner(model, "block")
    first = queue(model, run, [SeqChunk(0, toks)])
    second = queue(model, run, [SeqChunk(0, [0], start=len(toks))], prev_row=[0])
    real = LIB.llaisysModelSynchronize

    class FaultingLib:  # the core's Synchronize reports a device fault once
        def __getattr__(self, name):
            return getattr(LIB, name)

        @staticmethod
        def llaisysModelSynchronize(handle, max_pending):
            real(handle, 0)  # the core drops what is pending on a fault
            return int(llaisysStatus_t.ERR_DEVICE)

    monkeypatch.setattr(model_module, "LIB", FaultingLib())
    with pytest.raises(DeviceError):
        first.wait()
    monkeypatch.setattr(model_module, "LIB", LIB)
    with pytest.raises(DeviceError):  # not the ids of a step the fault lost
        second.wait()
    after = model.decode(run.kv, run.batch([SeqChunk(1, toks)], sampling=GREEDY,
                                           want_logits=False))
    assert int(after.token_ids[0]) == greedy_ids(model, "block", toks, 0)[0]


def test_pending_limit_when_compared_with_the_c_header_then_equal():
    header = (Path(__file__).resolve().parents[2] / "include/llaisys/model.h").read_text()
    assert f"#define LLAISYS_MAX_PENDING_DECODES {MAX_PENDING_DECODES}\n" in header


def test_negative_max_pending_when_synchronizing_then_clear_errors_and_steps_kept(model):
    toks = prompt(11, 5)
    run = CacheRunner(model, "block")
    step = queue(model, run, [SeqChunk(0, toks)])
    with pytest.raises(ValueError, match="max_pending"):
        model.synchronize(-1)
    with pytest.raises(InvalidArgumentError, match="max_pending"):
        check(LIB.llaisysModelSynchronize(model.handle, -1))
    assert int(step.wait().token_ids[0]) == greedy_ids(model, "block", toks, 0)[0]
