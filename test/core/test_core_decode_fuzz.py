"""Fuzzing llaisysModelDecode and the SLOT sequence operations through the Python bindings,
on a tiny random Qwen2.

Decode, in both KV layouts: a case prefills some history, then decodes one batch of chunks
that continue it, after zero or more mutations of the batch's arrays (token ids, positions,
sequence ids, output flags, slots, block tables, sampling rows):

- nothing crashes (the sanitizer suite runs this file under ASan + UBSan);
- an unmutated batch gives, for every output row, the logits of its sequence decoded alone;
- a rejected batch raises a typed LlaisysError and leaves the cache as it was: same stats,
  same positions, and a probe decode afterwards gives the untouched cache's logits;
- an accepted mutated batch returns finite logits and in-vocabulary token ids.

Sequence operations (decode, remove, copy, keep, clear with valid and invalid ids and
ranges, ids past one 64-bit tag word) are checked against a model of tagged cells.

Hypothesis runs a fixed, derandomized budget; decode cases worth keeping live in
corpus/decode/*.json and are replayed first.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llaisys.errors import LlaisysError
from llaisys.models import DecodeBatch, Model
from llaisys.runtime import get_num_threads, set_num_threads
from test.utils.batch_builders import CacheRunner, SeqChunk
from test.utils.tiny_models import write_tiny_hf

CORPUS = Path(__file__).parent / "corpus" / "decode"
N_SEQS, N_CELLS, BLOCK = 3, 48, 4
INT_FIELDS = {"tokens": np.int64, "positions": np.int64, "seq_ids": np.int32, "output": np.int8,
              "slots": np.int64, "block_tables": np.int32}
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "min_p")
STRUCTURAL = ("drop_slots", "drop_block_tables", "narrow_block_tables", "sampling_rows")


@dataclasses.dataclass
class Case:
    layout: str
    history: list[list[int]]  # tokens already in the cache, per sequence id
    chunks: list[tuple[int, list[int], list[int]]]  # (seq id, tokens, output indices)
    sampling: bool  # greedy sampling rows for the outputs
    mutations: list[tuple[str, int, float]]  # (field, index, value)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Iterator[Model]:
    # One kernel thread: at these shapes a decode is mostly thread hand-offs, which on a
    # loaded machine cost ~20x the work itself.
    threads = get_num_threads()
    set_num_threads(1)
    yield Model.load(write_tiny_hf(tmp_path_factory.mktemp("tiny-fuzz"), "qwen2"))
    set_num_threads(threads)


def alone(model: Model, layout: str, tokens: list[int]) -> np.ndarray:
    return CacheRunner(model, layout).decode([SeqChunk(0, tokens, outputs="all")]).logits


def mutate(batch: DecodeBatch, field: str, index: int, value: float) -> None:
    if field in INT_FIELDS:
        array = getattr(batch, field)
        if array is None:
            return
        info = np.iinfo(INT_FIELDS[field])
        array = np.array(array, dtype=INT_FIELDS[field])
        if array.size:
            array.reshape(-1)[index % array.size] = min(max(int(value), info.min), info.max)
        setattr(batch, field, array)
    elif field in SAMPLING_FIELDS:
        if batch.sampling is not None and batch.sampling.size:
            row = batch.sampling[index % batch.sampling.size]
            if field == "top_k":  # an int32 column: clamp what does not fit
                value = int(min(max(value, -(2**31)), 2**31 - 1)) if math.isfinite(value) else -1
            row[field] = value
    elif field == "drop_slots":
        batch.slots = None
    elif field == "drop_block_tables":
        batch.block_tables = None
    elif field == "narrow_block_tables":
        if batch.block_tables is not None:
            batch.block_tables = batch.block_tables[:, : index % (batch.block_tables.shape[1] + 1)]
    elif field == "sampling_rows":
        if batch.sampling is not None:
            batch.sampling = np.resize(batch.sampling, index % (batch.sampling.size + 2))
    else:
        raise AssertionError(f"unknown mutation {field!r}")


def snapshot(run: CacheRunner) -> tuple:
    kv = run.kv
    positions = [kv.seq_pos_max(s) for s in range(N_SEQS)] if run.layout == "slot" else None
    return kv.stats(), positions


def check_case(model: Model, case: Case) -> None:
    vocab = model.config.vocab_size
    run = CacheRunner(model, case.layout, n_cells=N_CELLS, block_size=BLOCK, n_seq_max=N_SEQS)
    prefill = [SeqChunk(s, h) for s, h in enumerate(case.history) if h]
    if prefill:
        run.decode(prefill)
    before = snapshot(run)
    chunks = [SeqChunk(s, toks, start=len(case.history[s]), outputs=outs or "none")
              for s, toks, outs in case.chunks]
    batch = run.batch(chunks, sampling={"temperature": 0.0} if case.sampling else None)
    for field, index, value in case.mutations:
        mutate(batch, field, index, value)
    try:
        result = model.decode(run.kv, batch)
    except LlaisysError as e:
        assert case.mutations, f"a valid batch was rejected: {e}"
        assert str(e)
        assert snapshot(run) == before, str(e)
        probe = [7]
        history = case.history[0]
        got = run.decode([SeqChunk(0, probe, start=len(history))]).logits
        np.testing.assert_allclose(got, alone(model, case.layout, history + probe)[-1:],
                                   atol=1e-4, rtol=0)
        return
    if case.mutations:
        assert np.isfinite(result.logits).all()
        if result.token_ids is not None:
            assert ((result.token_ids >= 0) & (result.token_ids < vocab)).all()
        return
    want = [alone(model, case.layout, case.history[s] + toks)[len(case.history[s]) + i]
            for s, toks, outs in case.chunks for i in outs]
    want = np.array(want).reshape(-1, vocab)
    np.testing.assert_allclose(result.logits, want, atol=1e-4, rtol=0)
    if case.sampling:
        np.testing.assert_array_equal(result.token_ids, result.logits.argmax(axis=1))


def _tokens(n_min: int, n_max: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 319), min_size=n_min, max_size=n_max)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    history = [draw(_tokens(0, 6)) for _ in range(N_SEQS)]
    seqs = draw(st.lists(st.integers(0, N_SEQS - 1), min_size=1, max_size=N_SEQS, unique=True))
    chunks = []
    for s in seqs:
        toks = draw(_tokens(1, 6))
        outs = draw(st.lists(st.integers(0, len(toks) - 1), max_size=len(toks), unique=True))
        chunks.append((s, toks, sorted(outs)))
    extreme = st.sampled_from([-1, 320, 256, N_CELLS, N_CELLS // BLOCK, N_SEQS, 2**31 - 1,
                               -(2**31), 2**62, -(2**63)])
    int_value = st.one_of(st.integers(-3, 60), extreme)
    float_value = st.one_of(st.floats(width=32), st.sampled_from([0.0, -1.0, 1.0]))
    mutation = st.one_of(
        st.tuples(st.sampled_from(sorted(INT_FIELDS)), st.integers(0, 64), int_value),
        st.tuples(st.sampled_from(SAMPLING_FIELDS), st.integers(0, 64), float_value),
        st.tuples(st.sampled_from(STRUCTURAL), st.integers(0, 64), st.just(0)))
    mutations = draw(st.one_of(st.just([]), st.lists(mutation, min_size=1, max_size=2)))
    return Case(draw(st.sampled_from(["slot", "block"])), history, chunks, draw(st.booleans()),
                mutations)


def corpus_cases() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


@pytest.mark.parametrize("path", corpus_cases(), ids=lambda p: p.stem)
def test_stored_case_when_replayed_then_no_crash_and_contract_holds(model, path):
    case = Case(**json.loads(path.read_text()))
    check_case(model, case)


@settings(max_examples=400, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_random_batch_when_decoded_then_matches_alone_or_rejected_with_cache_unchanged(
        model, case):
    check_case(model, case)


# ------------------------------------------------------------ SLOT sequence ops --

OPS_SEQS, OPS_CELLS = 70, 24  # sequence ids cross the 64-bit word of a cell's tag set
SEQ_IDS = st.sampled_from([0, 1, 2, 63, 64, 65, 69, -1, -2, 70, 2**31 - 1, -(2**31)])
POSITIONS = st.integers(-2, 14)
SEQ_OPS = st.lists(st.one_of(
    st.tuples(st.just("decode"), SEQ_IDS, st.integers(1, 4)),
    st.tuples(st.just("remove"), SEQ_IDS, POSITIONS, POSITIONS),
    st.tuples(st.just("copy"), SEQ_IDS, SEQ_IDS, POSITIONS, POSITIONS),
    st.tuples(st.just("keep"), SEQ_IDS),
    st.tuples(st.just("clear"))), max_size=12)


class TaggedCells:
    """What a SLOT cache should hold: cells of a position and the set of sequences tagging
    them (include/llaisys/model.h). apply() returns False for an op the cache must refuse."""

    def __init__(self) -> None:
        self.cells: list[tuple[int, set[int]]] = []

    def pos_max(self, seq: int) -> int:
        return max((p for p, tags in self.cells if seq in tags), default=-1)

    def apply(self, op: tuple) -> bool:
        kind, *a = op
        valid = range(OPS_SEQS)
        if kind == "decode":
            seq, n = a
            if seq not in valid or len(self.cells) + n > OPS_CELLS:
                return False
            start = self.pos_max(seq) + 1
            self.cells += [(start + i, {seq}) for i in range(n)]
        elif kind == "remove":
            seq, p0, p1 = a
            if seq >= OPS_SEQS:
                return False
            for p, tags in self.cells:
                if _in(p, p0, p1):
                    tags.difference_update(tags if seq < 0 else {seq})
            self.cells = [(p, t) for p, t in self.cells if t]
        elif kind == "copy":
            src, dst, p0, p1 = a
            if src not in valid or dst not in valid:
                return False
            for p, tags in self.cells:
                if src in tags and _in(p, p0, p1):
                    tags.add(dst)
        elif kind == "keep":
            if a[0] not in valid:
                return False
            self.cells = [(p, {a[0]}) for p, tags in self.cells if a[0] in tags]
        else:
            self.cells = []
        return True


def _in(p: int, p0: int, p1: int) -> bool:
    return p >= max(p0, 0) and (p1 < 0 or p < p1)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=SEQ_OPS)
def test_slot_sequence_ops_when_random_then_cache_matches_a_model_of_tagged_cells(model, ops):
    run = CacheRunner(model, "slot", n_cells=OPS_CELLS, n_seq_max=OPS_SEQS)
    want = TaggedCells()
    for op in ops:
        before = snapshot_all(run)
        expected = want.apply(op)
        try:
            if op[0] == "decode":
                seq, n = op[1], op[2]
                start = run.kv.seq_pos_max(seq) + 1 if 0 <= seq < OPS_SEQS else 0
                run.decode([SeqChunk(seq, [3] * n, start=start)])
            elif op[0] == "clear":
                run.kv.clear()
            else:
                getattr(run.kv, f"seq_{op[0]}")(*op[1:])
        except LlaisysError as e:
            assert not expected, f"{op} refused: {e}"
            assert snapshot_all(run) == before, op
            continue
        assert expected, f"{op} accepted"
        assert run.kv.stats().used == len(want.cells), op
        assert [run.kv.seq_pos_max(s) for s in range(OPS_SEQS)] == [
            want.pos_max(s) for s in range(OPS_SEQS)], op


def snapshot_all(run: CacheRunner) -> tuple:
    return run.kv.stats(), [run.kv.seq_pos_max(s) for s in range(OPS_SEQS)]
