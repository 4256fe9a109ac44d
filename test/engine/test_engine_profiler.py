import time

from llaisys.engine import SamplingParams
from llaisys.engine.profiler import PHASES, StepProfiler
from test.utils.fake_model import fake_engine, run_all

GREEDY = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)


def test_profiler_when_enabled_then_every_step_records_its_kind_batch_and_phases():
    engine = fake_engine()
    engine.profiler = StepProfiler()
    for p in ([1, 2, 3], [4, 5, 6, 7]):
        engine.submit(p, GREEDY)
    run_all(engine)
    records = engine.profiler.records
    assert [(r.kind, r.num_seqs) for r in records] == [("prefill", 2), ("decode", 2),
                                                        ("decode", 2)]
    assert all(set(r.seconds) == set(PHASES) and min(r.seconds.values()) >= 0
               for r in records)
    assert records[0].seconds["caller"] == 0  # nothing ran before the first step


def test_split_when_batches_differ_then_medians_of_the_largest_batch_by_default():
    prof = StepProfiler()
    for n, forward in ((2, 9.0), (4, 1.0), (4, 3.0), (4, 2.0)):
        prof.record("decode", n, 0.0, {"forward": forward})
        prof.idle()
    assert prof.split()["forward"] == 2.0 and prof.split(num_seqs=2)["forward"] == 9.0
    assert prof.split("prefill") == {}
    assert "batch 4 (median of 3)" in prof.format_split()


def test_profiler_when_off_by_default_then_engine_records_nothing(monkeypatch):
    monkeypatch.delenv("LLAISYS_PROFILE_STEPS", raising=False)
    assert fake_engine().profiler is None
    monkeypatch.setenv("LLAISYS_PROFILE_STEPS", "1")
    assert isinstance(fake_engine().profiler, StepProfiler)


def test_profiler_left_on_when_more_steps_than_it_keeps_then_only_the_latest_kept():
    from llaisys.engine.profiler import MAX_RECORDS

    profiler = StepProfiler()
    for i in range(MAX_RECORDS + 5):
        profiler.record("decode", i, time.perf_counter(), {})
    assert len(profiler.records) == MAX_RECORDS
    assert profiler.records[0].num_seqs == 5 and profiler.records[-1].num_seqs == MAX_RECORDS + 4
