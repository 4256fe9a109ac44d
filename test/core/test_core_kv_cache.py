"""KV cache semantics: SLOT sequence operations, BLOCK shared prefixes and release,
stats, capacity exhaustion and invalid batches leaving the cache untouched."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import pytest
import torch

import llaisys
from llaisys.errors import check
from llaisys.libllaisys import LIB
from llaisys.models import DecodeBatch, Model
from test.utils.batch_builders import BlockBatchState, CacheRunner, SeqChunk
from test.utils.faults import forward_stopped_at
from test.utils.hf_reference import VOCAB, tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(test_device: str) -> Model:
    return tiny_model("qwen2", device=test_device)[0]


def toks(seed: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, VOCAB, n)]


def alone(model: Model, tokens: list[int]) -> np.ndarray:
    return CacheRunner(model, "slot").decode([SeqChunk(0, tokens, outputs="all")]).logits


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------- SLOT --

def test_slot_prefill_when_done_then_pos_max_and_stats_count_cells(model):
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, toks(1, 6)), SeqChunk(2, toks(2, 3))])
    assert run.kv.seq_pos_max(0) == 5 and run.kv.seq_pos_max(2) == 2
    assert run.kv.seq_pos_max(1) == -1
    s = run.kv.stats()
    assert (s.capacity, s.used, s.free, s.peak) == (32, 9, 23, 9)
    assert s.bytes == 32 * model.kv_bytes_per_token()


def test_slot_tail_when_removed_and_decoded_again_then_same_logits(model):
    t = toks(3, 10)
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, t, outputs="all")])
    run.kv.seq_remove(0, 7, -1)
    assert run.kv.seq_pos_max(0) == 6 and run.kv.stats().used == 7
    again = run.decode([SeqChunk(0, t[7:], start=7, outputs="all")]).logits
    close(again, alone(model, t)[7:])
    assert run.kv.stats().peak == 10


def test_slot_all_sequences_when_removed_then_cache_empty(model):
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, toks(4, 4)), SeqChunk(1, toks(5, 4))])
    run.kv.seq_remove(-1)
    assert run.kv.stats().used == 0 and run.kv.seq_pos_max(0) == -1
    assert run.kv.stats().peak == 8


def test_slot_prefix_when_copied_then_shared_without_cells_and_continues_like_source(model):
    prefix, a_tail, b_tail = toks(6, 8), toks(7, 3), toks(8, 4)
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, prefix)])
    run.kv.seq_copy(0, 1, 0, 8)
    assert run.kv.stats().used == 8 and run.kv.seq_pos_max(1) == 7
    res = run.decode([SeqChunk(0, a_tail, start=8, outputs="all"),
                      SeqChunk(1, b_tail, start=8, outputs="all")]).logits
    close(res[:3], alone(model, prefix + a_tail)[8:])
    close(res[3:], alone(model, prefix + b_tail)[8:])
    assert run.kv.stats().used == 8 + 3 + 4


def test_slot_one_sequence_when_kept_then_others_freed_and_shared_cells_stay(model):
    prefix, a_tail, b_tail = toks(9, 5), toks(10, 2), toks(11, 3)
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, prefix)])
    run.kv.seq_copy(0, 1)
    run.decode([SeqChunk(0, a_tail, start=5), SeqChunk(1, b_tail, start=5)])
    run.kv.seq_keep(1)
    assert run.kv.seq_pos_max(0) == -1 and run.kv.seq_pos_max(1) == 7
    assert run.kv.stats().used == 5 + 3
    nxt = toks(12, 1)
    got = run.decode([SeqChunk(1, nxt, start=8)]).logits
    close(got, alone(model, prefix + b_tail + nxt)[-1:])


def test_slot_partial_range_when_removed_from_copy_then_source_keeps_it(model):
    run = CacheRunner(model, "slot", n_cells=32)
    run.decode([SeqChunk(0, toks(13, 6))])
    run.kv.seq_copy(0, 1)
    run.kv.seq_remove(1, 3, -1)
    assert run.kv.seq_pos_max(1) == 2 and run.kv.seq_pos_max(0) == 5
    assert run.kv.stats().used == 6


def test_slot_sequence_ids_past_64_when_decoded_and_copied_then_tracked_per_id(model):
    a, b, tail = toks(30, 5), toks(31, 4), toks(32, 2)
    run = CacheRunner(model, "slot", n_cells=32, n_seq_max=130)
    run.decode([SeqChunk(1, a), SeqChunk(65, b)])
    run.kv.seq_copy(65, 129)
    assert [run.kv.seq_pos_max(s) for s in (1, 65, 129, 64)] == [4, 3, 3, -1]
    got = run.decode([SeqChunk(129, tail, start=4, outputs="all")]).logits
    close(got, alone(model, b + tail)[4:])
    run.kv.seq_remove(65)
    assert run.kv.stats().used == 5 + 4 + 2 and run.kv.seq_pos_max(129) == 5


def test_sequence_ops_when_given_bad_ids_or_block_layout_then_typed_errors(model):
    slot = CacheRunner(model, "slot", n_cells=8, n_seq_max=2).kv
    with pytest.raises(llaisys.InvalidArgumentError, match="sequence id 2"):
        slot.seq_pos_max(2)
    with pytest.raises(llaisys.InvalidArgumentError):
        slot.seq_copy(-1, 0)
    block = CacheRunner(model, "block", n_cells=8).kv
    with pytest.raises(llaisys.UnsupportedError):
        block.seq_remove(0)
    with pytest.raises(llaisys.UnsupportedError):
        slot.release_blocks([0])


def test_cache_params_when_invalid_then_invalid_argument(model):
    with pytest.raises(llaisys.InvalidArgumentError, match="multiple of block_size"):
        model.create_kv_cache("block", 10, block_size=4)
    with pytest.raises(llaisys.InvalidArgumentError, match="n_seq_max"):
        model.create_kv_cache("slot", 10, n_seq_max=0)


# ---------------------------------------------------------------------- BLOCK --

def test_block_tables_when_sharing_prefix_blocks_then_logits_match_alone(model):
    prefix, a_tail, b_tail = toks(14, 8), toks(15, 5), toks(16, 2)
    run = CacheRunner(model, "block", n_cells=64, block_size=4)
    run.decode([SeqChunk(0, prefix)])
    used = run.kv.stats().used
    run.states[1] = BlockBatchState(run.pool, 4, blocks=run.states[0].blocks[:2])
    res = run.decode([SeqChunk(1, b_tail, start=8, outputs="all"),
                      SeqChunk(0, a_tail, start=8, outputs="all")]).logits
    close(res[:2], alone(model, prefix + b_tail)[8:])
    close(res[2:], alone(model, prefix + a_tail)[8:])
    assert run.kv.stats().used == used + 2 + 5


def test_block_blocks_when_released_then_unused_in_stats_but_contents_stay(model):
    t = toks(17, 9)
    run = CacheRunner(model, "block", n_cells=64, block_size=4)
    run.decode([SeqChunk(0, t[:8])])
    run.kv.release_blocks(run.states[0].blocks)
    s = run.kv.stats()
    assert (s.used, s.free, s.peak) == (0, 64, 8)
    got = run.decode([SeqChunk(0, t[8:], start=8)]).logits  # reads the released blocks
    close(got, alone(model, t)[-1:])
    with pytest.raises(llaisys.InvalidArgumentError, match="block id 16"):
        run.kv.release_blocks([16])


def test_cache_when_cleared_then_nothing_used(model):
    for layout in ("slot", "block"):
        run = CacheRunner(model, layout, n_cells=16)
        run.decode([SeqChunk(0, toks(18, 5))])
        run.kv.clear()
        assert run.kv.stats().used == 0 and run.kv.stats().peak == 5


# ------------------------------------------------------------ failed decodes --

def snapshot(run: CacheRunner) -> tuple:
    kv = run.kv
    return kv.stats(), [kv.seq_pos_max(s) for s in range(kv.n_seq_max)] \
        if run.layout == "slot" else None


def probe(run: CacheRunner, history: list[int], model: Model) -> None:
    """Decoding the next token of sequence 0 gives the logits of an untouched cache."""
    nxt = toks(99, 1)
    got = run.decode([SeqChunk(0, nxt, start=len(history))]).logits
    close(got, alone(model, history + nxt)[-1:])


def fails_leaving_cache(run: CacheRunner, model: Model, history: list[int], chunk: SeqChunk,
                       error: type[Exception], match: str, stop_at: int | None = None) -> None:
    """After sequence 0 decoded history, decoding chunk raises error (stopped at layer
    stop_at when given) and the cache is as before: same stats, and the next token's
    logits those of a cache that never saw the call."""
    run.decode([SeqChunk(0, history)])
    before = snapshot(run)
    stop = nullcontext() if stop_at is None else forward_stopped_at(model, stop_at)
    with stop, pytest.raises(error, match=match):
        run.decode([chunk])
    assert snapshot(run) == before
    probe(run, history, model)


def test_slot_cache_when_too_full_then_kv_cache_full_and_unchanged(model):
    fails_leaving_cache(CacheRunner(model, "slot", n_cells=8), model, toks(19, 6),
                        SeqChunk(0, toks(20, 3), start=6), llaisys.KvCacheFullError,
                        "3 tokens need cells, 2 of 8")


def test_block_step_when_stopped_after_a_layer_rewrote_cells_then_their_keys_restored(model):
    # layer 0 overwrites the cells of positions 0..7 before the stop
    fails_leaving_cache(CacheRunner(model, "block", n_cells=64), model, toks(23, 8),
                        SeqChunk(0, toks(24, 8)), llaisys.LlaisysError, "stopped at layer 1",
                        stop_at=1)


def test_slot_step_when_stopped_after_a_layer_then_its_cells_freed_and_cache_unchanged(model):
    fails_leaving_cache(CacheRunner(model, "slot", n_cells=12), model, toks(25, 6),
                        SeqChunk(0, toks(26, 6), start=6), llaisys.LlaisysError,
                        "stopped at layer 1", stop_at=1)


def test_stop_when_disarmed_or_past_the_last_layer_then_steps_run(model):
    t = toks(27, 5)
    run = CacheRunner(model, "block", n_cells=64)
    with forward_stopped_at(model, 0):
        pass
    run.decode([SeqChunk(0, t[:4])])
    with forward_stopped_at(model, model.config.num_layers):  # no such layer
        got = run.decode([SeqChunk(0, t[4:], start=4)]).logits
    close(got, alone(model, t)[-1:])


def test_stop_hook_when_given_no_model_then_invalid_argument():
    with pytest.raises(llaisys.InvalidArgumentError, match="null model handle"):
        check(LIB.llaisysModelFailAtLayer(None, 1))


def set_field(field: str, index: tuple | int, value: int) -> Callable[[DecodeBatch], None]:
    def mutate(batch: DecodeBatch) -> None:
        getattr(batch, field)[index] = value
    return mutate


def shrink_tables(batch: DecodeBatch) -> None:
    batch.block_tables = batch.block_tables[:, :1]


INVALID = [
    ("slot", set_field("tokens", 0, VOCAB), "id 300 out of range"),
    ("block", set_field("tokens", 1, -1), "id -1 out of range"),
    ("slot", set_field("positions", 1, 8), "jumps from position 6 to 8"),
    ("block", set_field("positions", 0, 256), "position 256 out of range"),
    ("slot", set_field("seq_ids", slice(0, None), 4), "sequence 4 out of range"),
    ("slot", set_field("positions", slice(0, None), np.array([7, 8])), "expected 6"),
    ("block", set_field("seq_ids", slice(0, None), 1), "sequence 1 out of range"),
    ("block", set_field("slots", 0, 64), "slot 64 out of range"),
    ("block", set_field("slots", 0, 0), "does not match the block table"),
    ("block", shrink_tables, "block table has 1 columns"),
    ("block", set_field("block_tables", (0, 0), 16), "holds block 16"),
    ("block", set_field("block_tables", (0, 1), -1), "holds block -1"),
]


@pytest.mark.parametrize("layout,mutate,message", INVALID)
def test_malformed_batch_when_decoded_then_invalid_batch_and_cache_unchanged(
        model, layout, mutate, message):
    t = toks(21, 6)
    run = CacheRunner(model, layout, n_cells=64)
    run.decode([SeqChunk(0, t)])
    before = snapshot(run)
    batch = run.batch([SeqChunk(0, toks(22, 2), start=6)])
    mutate(batch)
    with pytest.raises(llaisys.InvalidBatchError, match=message):
        model.decode(run.kv, batch)
    assert snapshot(run) == before
    probe(run, t, model)


def test_two_sequences_when_writing_one_slot_then_invalid_batch(model):
    run = CacheRunner(model, "block", n_cells=32)
    run.decode([SeqChunk(0, toks(23, 3))])  # block 0 holds positions 0..2 of both
    run.states[1] = BlockBatchState(run.pool, 4, blocks=run.states[0].blocks)
    batch = run.batch([SeqChunk(0, toks(24, 1), start=3), SeqChunk(1, toks(25, 1), start=3)])
    with pytest.raises(llaisys.InvalidBatchError, match="written by two tokens"):
        model.decode(run.kv, batch)


def test_sampling_rows_when_wrong_count_or_range_then_invalid_batch(model):
    run = CacheRunner(model, "slot", n_cells=16)
    batch = run.batch([SeqChunk(0, toks(26, 3), outputs="all")], sampling={"temperature": 0.0})
    batch.sampling = batch.sampling[:2]
    with pytest.raises(llaisys.InvalidBatchError, match="one row per output"):
        model.decode(run.kv, batch)
    batch = run.batch([SeqChunk(0, toks(26, 3))], sampling={"top_p": 0.0})
    with pytest.raises(llaisys.InvalidBatchError, match="top_p"):
        model.decode(run.kv, batch)
    assert run.kv.stats().used == 0
