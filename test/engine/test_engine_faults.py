"""Fault injection on the real core (a tiny random Qwen2): an exception inside a model step,
raised after the model wrote the step's KV, fails only that step's requests; the engine
keeps serving, later requests get the outputs they get without faults, and every KV block
is freed in the engine and in the core."""

from __future__ import annotations

import pytest

from llaisys.engine import EngineArgs, LLMEngine, SamplingParams
from llaisys.models import Model
from test.utils.fake_model import run_all
from test.utils.faults import StepFault
from test.utils.tiny_models import write_tiny_hf

GREEDY = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
PROMPTS = {name: [(seed * 31 + j * 7) % 300 for j in range(5 + seed)]
           for seed, name in enumerate(["a", "b", "c", "d"])}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Model:
    return Model.load(write_tiny_hf(tmp_path_factory.mktemp("tiny-faults"), "qwen2"))


def engine_of(model: Model, layout: str, mixed_batches: bool = False,
              async_scheduling: bool = False) -> LLMEngine:
    return LLMEngine(EngineArgs(kv_cache_tokens=128, block_size=4, max_num_seqs=4,
                                kv_layout=layout, mixed_batches=mixed_batches,
                                async_scheduling=async_scheduling), model=model)


def reference(model: Model, layout: str) -> dict[str, list[int]]:
    engine = engine_of(model, layout)
    for name, p in PROMPTS.items():
        engine.submit(p, GREEDY, request_id=name)
    outs, _ = run_all(engine)
    return {name: outs[name].outputs[0].token_ids for name in PROMPTS}


def assert_streamed_is_final(outs: dict, chunks: list) -> None:
    """What each request streamed is its final output, failed ones included."""
    for name, out in outs.items():
        streamed = [t for c in chunks if c.request_id == name for t in c.token_ids]
        assert out.outputs[0].token_ids == streamed, name


def assert_all_free(engine: LLMEngine) -> None:
    stats = engine.stats()
    assert stats.kv_blocks_used == 0 and stats.running == stats.waiting == 0
    assert engine.executor.worker.kv.stats().used == 0


@pytest.mark.parametrize("async_scheduling", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("layout", ["block", "slot"])
def test_step_of_a_late_request_when_it_raises_then_only_its_step_fails_and_rest_match(
        model, layout, async_scheduling):
    want = reference(model, layout)
    engine = engine_of(model, layout, async_scheduling=async_scheduling)
    fault = StepFault(request_ids={"b"})
    engine.executor.after_step = fault
    engine.submit(PROMPTS["a"], GREEDY, request_id="a")
    first = engine.step() + engine.step()  # a is prefilled and decoding
    engine.submit(PROMPTS["b"], GREEDY, request_id="b")
    outs, chunks = run_all(engine)
    assert "b" in fault.failed and "a" not in fault.failed
    assert outs["a"].outputs[0].token_ids == want["a"]
    failed = outs["b"].outputs[0]
    assert failed.finish_reason == "abort" and "InjectedFault" in str(failed.stop_reason)
    assert [c.finish_reason for c in first + chunks if c.request_id == "b"][-1] == "abort"
    assert_streamed_is_final(outs, first + chunks)
    assert_all_free(engine)
    for name in ("c", "b"):  # the engine serves new requests, also with b's prompt
        engine.submit(PROMPTS[name], GREEDY, request_id=name + "2")
    outs, _ = run_all(engine)
    assert [outs[n + "2"].outputs[0].token_ids for n in ("c", "b")] == [want["c"], want["b"]]
    assert_all_free(engine)


@pytest.mark.parametrize("async_scheduling", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mixed_batches", [False, True], ids=["split", "mixed"])
@pytest.mark.parametrize("layout", ["block", "slot"])
def test_decode_step_when_it_raises_then_its_requests_fail_and_next_ones_match(
        model, layout, mixed_batches, async_scheduling):
    want = reference(model, layout)
    engine = engine_of(model, layout, mixed_batches, async_scheduling)
    fault = StepFault(skip=3, steps=1)
    engine.executor.after_step = fault
    for name in ("a", "b", "c"):
        engine.submit(PROMPTS[name], GREEDY, request_id=name)
    outs, chunks = run_all(engine)
    assert fault.failed and fault.steps == 0
    assert_streamed_is_final(outs, chunks)
    for name, out in outs.items():
        if name in fault.failed:
            assert out.outputs[0].finish_reason == "abort"
        else:
            assert out.outputs[0].token_ids == want[name]
    assert_all_free(engine)
    engine.submit(PROMPTS["d"], GREEDY, request_id="d")
    engine.submit(PROMPTS["a"], GREEDY, request_id="a2")
    outs, _ = run_all(engine)
    assert outs["d"].outputs[0].token_ids == want["d"]
    assert outs["a2"].outputs[0].token_ids == want["a"]
    assert_all_free(engine)
