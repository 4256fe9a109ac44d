"""Async scheduling (EngineArgs.async_scheduling): step N + 1 is scheduled, prepared and
launched before step N's tokens are processed. Outputs are the synchronous engine's for
every sampling control; a sequence that stops on a token or a string costs one extra row
of compute whose token is dropped, one that reaches max_tokens none; failures and aborts
stay with their requests and every KV block is freed."""

from __future__ import annotations

import dataclasses

import pytest

from llaisys.engine import EngineArgs, LLMEngine, RequestStatus, SamplingParams
from llaisys.engine.sequence import PENDING_TOKEN
from llaisys.models import Model
from test.utils.fake_model import EOS, FakeModel, fake_engine, run_all
from test.utils.faults import StepFault
from test.utils.tiny_models import write_tiny_hf

# Greedy output follows this script, EOS included; sampled outputs mostly do.
SCRIPT = list(b"hello world, ") + [EOS] + list(b"abc def")
PARAMS = {
    "greedy": SamplingParams(temperature=0, max_tokens=20, ignore_eos=True),
    "eos": SamplingParams(temperature=0, max_tokens=40),
    "stop_string": SamplingParams(temperature=0, max_tokens=40, stop=["wor"], ignore_eos=True),
    "stop_id": SamplingParams(temperature=0, max_tokens=40, stop_token_ids=[ord(",")],
                              ignore_eos=True),
    "seeded": SamplingParams(temperature=1.0, seed=5, max_tokens=16, ignore_eos=True),
    "penalties": SamplingParams(temperature=0.8, seed=3, presence_penalty=1.0,
                                repetition_penalty=1.3, max_tokens=12, ignore_eos=True),
    "logprobs": SamplingParams(temperature=0, logprobs=2, max_tokens=8, ignore_eos=True),
    "min_tokens": SamplingParams(temperature=0, min_tokens=18, max_tokens=30),
    "n2": SamplingParams(n=2, temperature=1.0, seed=11, max_tokens=9, ignore_eos=True),
}


def prompt(i: int) -> list[int]:
    return [(i * 37 + j * 11) % 250 for j in range(4 + 3 * i)]


class CountingModel(FakeModel):
    """Counts the token rows each decode call computes."""

    def __init__(self) -> None:
        super().__init__(script=SCRIPT)
        self.rows = 0

    def decode(self, kv, batch):
        self.rows += len(batch.tokens)
        return super().decode(kv, batch)


def outputs(engine: LLMEngine, params: dict[str, SamplingParams]) -> dict[str, list[tuple]]:
    for i, (name, p) in enumerate(params.items()):
        engine.submit(prompt(i), p, request_id=name)
    outs, _ = run_all(engine)
    assert_all_free(engine)
    return {name: [(c.token_ids, c.text, c.finish_reason, c.stop_reason, c.logprobs)
                   for c in outs[name].outputs] for name in params}


def assert_all_free(engine: LLMEngine) -> None:
    stats = engine.stats()
    assert stats.kv_blocks_used == 0 and stats.running == stats.waiting == 0
    assert engine.executor.worker.kv.stats().used == 0


@pytest.mark.parametrize("kv_cache_tokens", [256, 64], ids=["roomy", "preempting"])
@pytest.mark.parametrize("mixed_batches", [False, True], ids=["split", "mixed"])
def test_every_sampling_control_when_scheduled_async_then_outputs_match_synchronous(
        mixed_batches, kv_cache_tokens):
    def run(async_scheduling: bool) -> tuple[dict, LLMEngine]:
        engine = fake_engine(CountingModel(), mixed_batches=mixed_batches,
                             kv_cache_tokens=kv_cache_tokens, max_num_batched_tokens=24,
                             async_scheduling=async_scheduling)
        return outputs(engine, PARAMS), engine

    want, sync_engine = run(False)
    got, async_engine = run(True)
    assert got == want
    # The script reaches each stop: the cases are not vacuous.
    assert [want[n][0][2:4] for n in ("eos", "stop_string", "stop_id")] == [
        ("stop", EOS), ("stop", "wor"), ("stop", ord(","))]
    assert want["min_tokens"][0][0][:18].count(EOS) == 0
    if kv_cache_tokens == 64:
        assert async_engine.stats().preemptions > 0


def test_stops_when_scheduled_async_then_a_token_stop_wastes_one_row_and_a_length_stop_none():
    def rows(params: SamplingParams, async_scheduling: bool) -> int:
        model = CountingModel()
        engine = fake_engine(model, async_scheduling=async_scheduling)
        outputs(engine, {"only": params})
        return model.rows

    stop = PARAMS["stop_string"]
    length = dataclasses.replace(PARAMS["greedy"], max_tokens=5)
    assert rows(stop, True) == rows(stop, False) + 1
    assert rows(length, True) == rows(length, False)


def test_async_engine_when_a_step_returns_then_the_next_is_already_launched():
    model = CountingModel()
    engine = fake_engine(model, async_scheduling=True)
    engine.submit(prompt(1), PARAMS["greedy"], request_id="a")
    chunks = engine.step()
    assert len(model.batches) == 2  # the prefill, then the first decode, queued
    assert [(c.request_id, len(c.token_ids)) for c in chunks] == [("a", 1)]
    seq = engine._requests["a"].seqs[0]
    assert seq.token_ids[-1] == PENDING_TOKEN and seq.token_ids[-2] == chunks[0].token_ids[0]


def test_request_when_aborted_with_a_step_in_flight_then_others_match_and_blocks_are_freed():
    want = outputs(fake_engine(FakeModel(script=SCRIPT)),
                   {"a": PARAMS["greedy"], "b": PARAMS["seeded"]})
    engine = fake_engine(FakeModel(script=SCRIPT), async_scheduling=True)
    engine.submit(prompt(0), PARAMS["greedy"], request_id="a")
    engine.submit(prompt(1), PARAMS["seeded"], request_id="b")
    streamed = engine.step() + engine.step() + engine.step()
    assert engine.abort("a")
    outs, chunks = run_all(engine)
    a = outs["a"].outputs[0]
    assert a.finish_reason == "abort" and PENDING_TOKEN not in a.token_ids
    got_a = [t for c in streamed + chunks if c.request_id == "a" for t in c.token_ids]
    assert a.token_ids == got_a == want["a"][0][0][:len(got_a)] and len(got_a) >= 2
    assert outs["b"].outputs[0].token_ids == want["b"][0][0]
    assert_all_free(engine)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Model:
    return Model.load(write_tiny_hf(tmp_path_factory.mktemp("tiny-async"), "qwen2"))


@pytest.mark.parametrize("layout", ["block", "slot"])
def test_real_core_when_scheduled_async_then_outputs_match_synchronous(model, layout):
    params = {"greedy": SamplingParams(temperature=0, max_tokens=10, ignore_eos=True),
              "seeded": SamplingParams(temperature=0.9, seed=2, max_tokens=12, ignore_eos=True),
              "logprobs": SamplingParams(temperature=0, logprobs=1, max_tokens=5,
                                         ignore_eos=True)}

    def run(async_scheduling: bool) -> dict:
        engine = LLMEngine(EngineArgs(kv_cache_tokens=128, block_size=4, max_num_seqs=4,
                                      kv_layout=layout, async_scheduling=async_scheduling),
                           model=model)
        return outputs(engine, params)

    # A stop token taken from the request's greedy output (its first new id after the
    # first): the sequence stops there, before its max_tokens.
    params["stop"] = params["greedy"]
    tokens = run(False)["stop"][0][0]
    stop = next(t for i, t in enumerate(tokens) if i >= 1 and t not in tokens[:i])
    params["stop"] = dataclasses.replace(params["greedy"], stop_token_ids=[stop])
    want = run(False)
    assert want["stop"][0][2:4] == ("stop", stop) and len(want["stop"][0][0]) < 10
    assert run(True) == want


def test_step_when_it_fails_after_the_next_was_queued_then_that_ones_new_request_runs():
    want = outputs(fake_engine(FakeModel(script=SCRIPT)), {"b": PARAMS["greedy"]})
    engine = fake_engine(FakeModel(script=SCRIPT), async_scheduling=True)
    fault = StepFault(skip=1, steps=1)  # the prefill of a passes, its first decode fails
    engine.executor.after_step = fault
    engine.submit(prompt(5), PARAMS["greedy"], request_id="a")
    chunks = engine.step()
    engine.submit(prompt(0), PARAMS["greedy"], request_id="b")
    chunks += engine.step()  # b's prefill is queued while a's decode runs; that one fails
    assert fault.failed == {"a"}
    assert engine._requests["b"].seqs[0].state.status is RequestStatus.RUNNING
    a = engine.collect("a").outputs[0]
    assert a.finish_reason == "abort"
    assert a.token_ids == [t for c in chunks if c.request_id == "a" for t in c.token_ids]
    outs, _ = run_all(engine)
    assert [c.token_ids for c in outs["b"].outputs] == [c[0] for c in want["b"]]
    assert_all_free(engine)


@pytest.mark.parametrize("layout", ["block", "slot"])
def test_real_core_when_a_prompt_is_chunked_while_others_decode_then_outputs_match(model, layout):
    """Decode steps queued before prompt chunks that sample nothing: each is waited for in
    its turn (the core counts every queued call)."""
    greedy = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)

    def run(async_scheduling: bool) -> dict:
        engine = LLMEngine(EngineArgs(kv_cache_tokens=256, block_size=4, max_num_seqs=4,
                                      max_num_batched_tokens=8, kv_layout=layout,
                                      async_scheduling=async_scheduling), model=model)
        engine.submit(prompt(0), greedy, request_id="a")
        chunks = engine.step() + engine.step() + engine.step()
        engine.submit([(7 * j + 3) % 250 for j in range(30)], greedy, request_id="b")
        outs, rest = run_all(engine)
        assert_all_free(engine)
        outs["a"] = engine.collect("a") or outs.get("a")
        streamed = {n: [t for c in chunks + rest if c.request_id == n for t in c.token_ids]
                    for n in ("a", "b")}
        assert all(outs[n].outputs[0].token_ids == streamed[n] for n in ("a", "b"))
        return streamed

    assert run(True) == run(False)
