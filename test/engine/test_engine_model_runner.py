import numpy as np

from llaisys.engine import SamplingParams
from llaisys.engine.model_runner import ModelRunner
from llaisys.engine.sampler import step_seeds
from llaisys.engine.scheduler import SchedulerOutput
from test.utils.fake_model import FakeModel, fake_engine

GREEDY = SamplingParams(temperature=0, max_tokens=4)


def test_prefill_with_a_chunk_when_prepared_then_arrays_match_positions_tables_and_outputs():
    model = FakeModel()
    engine = fake_engine(model, max_num_batched_tokens=10)
    a, b = list(range(10, 16)), list(range(20, 27))
    engine.submit(a, GREEDY)
    engine.submit(b, GREEDY)
    engine.step()
    batch = model.batches[-1]
    assert batch.tokens.tolist() == a + b[:4]
    assert batch.positions.tolist() == list(range(6)) + list(range(4))
    assert batch.seq_ids.tolist() == [0] * 6 + [1] * 4
    assert batch.output.tolist() == [0, 0, 0, 0, 0, 1] + [0, 0, 0, 0]
    t = batch.block_tables  # a row per running sequence, as wide as the longest table
    assert t.shape == (2, 2) and t[1, 1] == -1  # b holds one block so far
    rows, pos = batch.seq_ids, batch.positions
    assert (batch.slots == t[rows, pos // 4] * 4 + pos % 4).all()
    assert len(batch.sampling) == 1 and not batch.want_logits
    engine.step()  # b's last 3 prompt tokens, before any decode
    batch = model.batches[-1]
    assert batch.tokens.tolist() == b[4:] and batch.positions.tolist() == [4, 5, 6]
    assert batch.output.tolist() == [0, 0, 1]
    engine.step()  # both decode
    batch = model.batches[-1]
    assert batch.positions.tolist() == [6, 7] and batch.output.tolist() == [1, 1]
    assert batch.block_tables.shape == (2, 2) and (batch.block_tables >= 0).all()


def test_sequence_when_finished_then_its_row_and_table_go_to_the_next_one():
    model = FakeModel()
    engine = fake_engine(model)
    engine.submit([1, 2, 3, 4, 5], SamplingParams(temperature=0, max_tokens=1))
    engine.submit([6, 7], SamplingParams(temperature=0, max_tokens=8))
    engine.step()  # both prefill; the first finishes with its one token
    assert model.batches[-1].seq_ids.tolist() == [0] * 5 + [1] * 2
    engine.submit([8, 9, 10], GREEDY)
    engine.step()
    batch = model.batches[-1]
    rows = dict(zip(batch.tokens.tolist(), batch.seq_ids.tolist(), strict=True))
    assert rows[8] == 0, "the new sequence takes the freed row"
    running = {s.request.prompt_token_ids[0]: s.batch_row for s in engine.scheduler.running}
    assert running == {6: 1, 8: 0}, "the running one keeps its row"
    new_table = batch.block_tables[0]
    assert new_table[0] >= 0 and (new_table[1:] == -1).all(), "nothing left of the old table"


def test_seeded_rows_when_prepared_then_seeds_are_step_seeds_of_seed_index_and_step():
    model = FakeModel()
    engine = fake_engine(model)
    engine.submit([1, 2, 3], SamplingParams(temperature=1.0, seed=7, n=2, max_tokens=4))
    for _ in range(3):
        engine.step()
    batch = model.batches[-1]
    seqs = engine.scheduler.running
    expect = step_seeds(np.array([s.request.seed for s in seqs]), np.array([s.index for s in seqs]),
                        np.array([s.num_output_tokens - 1 for s in seqs]))
    assert sorted(batch.sampling["seed"].tolist()) == sorted(expect.tolist())


def test_logprob_row_when_batched_with_plain_rows_then_logits_asked_once_for_the_batch():
    model = FakeModel()
    engine = fake_engine(model)
    engine.submit([1, 2, 3], GREEDY)
    engine.step()
    assert not model.batches[-1].want_logits
    engine.submit([4, 5, 6], SamplingParams(temperature=0, max_tokens=2, logprobs=1))
    engine.step()
    assert model.batches[-1].want_logits


class RecordingKv:
    def __init__(self):
        self.removed = []

    def seq_remove(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        self.removed.append(seq)


def test_slot_layout_when_prepared_then_core_sequence_ids_and_no_tables_then_released():
    engine = fake_engine()
    for p in ([1, 2, 3], [4, 5]):
        engine.submit(p, GREEDY)
    sched = engine.scheduler.schedule()
    kv = RecordingKv()
    runner = ModelRunner(engine.model, kv, layout="slot", block_size=4, max_num_seqs=4,
                         max_num_batched_tokens=16, max_model_len=64)
    step = runner.prepare(sched)
    batch = step.batch
    assert batch.slots is None and batch.block_tables is None
    assert batch.seq_ids.tolist() == [0, 0, 0, 1, 1] and len(step.out_seqs) == 2
    runner.release(sched.seqs[0], [])
    assert kv.removed == [0]
    again = runner.prepare(SchedulerOutput("prefill", [sched.seqs[0]], [3])).batch
    assert np.unique(again.seq_ids).tolist() == [0]
