import numpy as np
import pytest

from llaisys.engine import EngineOverloadedError, SamplingParams
from test.utils.fake_model import EOS, FakeModel, fake_engine, run_all

GREEDY = SamplingParams(temperature=0, max_tokens=12)


def prompt(i: int, n: int = 10) -> list[int]:
    return [(i * 37 + j * 11) % 250 for j in range(n)]


def generate(engine, prompts, params=GREEDY):
    ids = [engine.submit(p, params) for p in prompts]
    outs, _ = run_all(engine)
    return [outs[i] for i in ids]


def test_prompt_when_alone_or_in_a_batch_of_16_then_greedy_output_is_identical():
    alone = generate(fake_engine(), [prompt(3, 14)])[0].outputs[0].token_ids
    mixed = [prompt(i, 5 + 3 * i) for i in range(16)]
    batched = generate(fake_engine(max_num_batched_tokens=48), mixed)
    assert batched[3].outputs[0].token_ids == alone
    assert len({tuple(o.outputs[0].token_ids) for o in batched}) == 16


def test_mixed_batches_when_prompts_arrive_while_others_decode_then_greedy_output_unchanged():
    prompts = [prompt(i, 6 + 5 * i) for i in range(10)]
    reference = generate(fake_engine(), prompts)
    engine = fake_engine(mixed_batches=True, max_num_batched_tokens=12, kv_cache_tokens=96)
    first = [engine.submit(p, GREEDY) for p in prompts[:4]]
    engine.step()
    engine.step()
    rest = [engine.submit(p, GREEDY) for p in prompts[4:]]
    outs, _ = run_all(engine)
    assert engine.stats().preemptions > 0 and engine.stats().prompt_tokens >= sum(
        map(len, prompts))
    assert [outs[i].outputs[0].token_ids for i in first + rest] == [
        o.outputs[0].token_ids for o in reference]


def test_small_cache_when_requests_are_preempted_then_greedy_output_is_unchanged():
    prompts = [prompt(i, 9 + i) for i in range(6)]
    params = SamplingParams(temperature=0, max_tokens=20)
    reference = generate(fake_engine(kv_cache_tokens=1024), prompts, params)
    engine = fake_engine(kv_cache_tokens=64)
    tight = generate(engine, prompts, params)
    assert engine.stats().preemptions > 0
    assert [o.outputs[0].token_ids for o in tight] == [o.outputs[0].token_ids for o in reference]


def test_shared_prefix_when_cached_or_not_then_output_is_identical_and_hits_counted():
    base = prompt(1, 17)
    later = base[:12] + [200, 201, 202]
    engine = fake_engine()
    generate(engine, [base])
    hit = generate(engine, [later])[0]
    assert hit.metrics.num_cached_tokens == 12 and engine.stats().prefix_hits == 3
    miss = generate(fake_engine(enable_prefix_caching=False), [later])[0]
    assert hit.outputs[0].token_ids == miss.outputs[0].token_ids


def test_all_requests_when_finished_then_every_block_is_free_in_engine_and_core():
    model = FakeModel()
    engine = fake_engine(model, kv_cache_tokens=96)
    generate(engine, [prompt(i, 7 + 2 * i) for i in range(8)],
             SamplingParams(temperature=0, max_tokens=15, n=2))
    stats = engine.stats()
    assert stats.kv_blocks_used == 0 and stats.running == stats.waiting == 0
    assert all(b.ref_count == 0 for b in engine.block_manager.blocks)
    assert model.kv.stats().used == 0 and model.kv.stats().peak > 0


def test_seeded_sampling_when_alone_or_batched_then_identical():
    params = SamplingParams(temperature=0.9, top_p=0.9, top_k=50, seed=1234, max_tokens=16)
    alone = generate(fake_engine(), [prompt(5)], params)[0].outputs[0].token_ids
    engine = fake_engine()
    others = [engine.submit(prompt(i), SamplingParams(temperature=1.0, max_tokens=10))
              for i in range(6)]
    rid = engine.submit(prompt(5), params)
    outs, _ = run_all(engine)
    assert outs[rid].outputs[0].token_ids == alone and len(others) == 6
    greedy = generate(fake_engine(), [prompt(5)])[0].outputs[0].token_ids
    assert alone[:12] != greedy


def test_n_samples_when_generated_then_share_prompt_blocks_and_differ():
    engine = fake_engine()
    rid = engine.submit(prompt(2, 14), SamplingParams(n=3, temperature=1.0, seed=7,
                                                      max_tokens=8))
    engine.step()  # sample 0 prefills, then 1 and 2 fork from it
    leader = engine._requests[rid].seqs[0]
    shared = leader.block_table[:3]  # (14 - 1) // 4 full prompt blocks
    assert [engine.block_manager.blocks[b].ref_count for b in shared] == [3, 3, 3]
    engine.step()
    out = run_all(engine)[0][rid]
    assert [c.index for c in out.outputs] == [0, 1, 2]
    assert len({tuple(c.token_ids) for c in out.outputs}) == 3
    assert all(len(c.token_ids) == 8 and c.finish_reason == "length" for c in out.outputs)


def test_max_tokens_when_reached_then_length_with_exact_count():
    out = generate(fake_engine(), [prompt(0)], SamplingParams(temperature=0, max_tokens=5))[0]
    c = out.outputs[0]
    assert c.finish_reason == "length" and len(c.token_ids) == 5 and out.finished


def test_stop_token_id_when_sampled_then_stop_with_token_kept_and_text_without_it():
    script = list(b"abcdef")
    engine = fake_engine(FakeModel(script=script))
    out = generate(engine, [list(b"zzzzzz")], SamplingParams(
        temperature=0, max_tokens=10, stop_token_ids=[ord("d")]))[0].outputs[0]
    assert out.token_ids == list(b"abcd") and out.text == "abc"
    assert out.finish_reason == "stop" and out.stop_reason == ord("d")


def test_eos_when_sampled_then_stop_unless_ignore_eos_or_min_tokens():
    eager = FakeModel(eos_logit=50.0)
    out = generate(fake_engine(eager), [prompt(0)], GREEDY)[0].outputs[0]
    assert out.token_ids == [EOS] and out.finish_reason == "stop" and out.text == ""
    out = generate(fake_engine(eager), [prompt(0)], SamplingParams(
        temperature=0, max_tokens=6, ignore_eos=True))[0].outputs[0]
    assert out.token_ids == [EOS] * 6 and out.finish_reason == "length"
    out = generate(fake_engine(eager), [prompt(0)], SamplingParams(
        temperature=0, max_tokens=8, min_tokens=3))[0].outputs[0]
    assert len(out.token_ids) == 4 and EOS not in out.token_ids[:3] and out.token_ids[3] == EOS


def test_stop_string_when_generated_then_cut_from_text_and_chunks_never_show_it():
    script = list(b"Hello world. Bye. ")
    engine = fake_engine(FakeModel(script=script))
    rid = engine.submit(list(b"x" * len(script)), SamplingParams(
        temperature=0, max_tokens=30, stop=["wor", "Bye"]))
    outs, chunks = run_all(engine)
    c = outs[rid].outputs[0]
    assert c.text == "Hello " and c.finish_reason == "stop" and c.stop_reason == "wor"
    assert c.token_ids == list(b"Hello wor")
    assert "".join(ch.text for ch in chunks) == "Hello " and chunks[-1].finish_reason == "stop"


def test_stop_string_when_min_tokens_not_reached_then_ignored():
    script = list(b"ab")
    engine = fake_engine(FakeModel(script=script))
    out = generate(engine, [list(b"xx")], SamplingParams(
        temperature=0, max_tokens=10, min_tokens=4, stop=["a"]))[0].outputs[0]
    assert out.text == "abab" and out.stop_reason == "a"


def test_logprobs_when_asked_then_top_k_and_sampled_token_per_step():
    out = generate(fake_engine(), [prompt(4)], SamplingParams(
        temperature=0, max_tokens=6, logprobs=3))[0].outputs[0]
    assert len(out.logprobs) == 6
    for tok, entry in zip(out.token_ids, out.logprobs, strict=True):
        assert len(entry) == 3 and tok in entry and all(v <= 0 for v in entry.values())
        assert entry[tok] == max(entry.values())
    plain = generate(fake_engine(), [prompt(4)], SamplingParams(temperature=0, max_tokens=6))
    assert plain[0].outputs[0].token_ids == out.token_ids and plain[0].outputs[0].logprobs is None


def test_frequency_penalty_when_a_script_repeats_then_output_leaves_the_script():
    script = list(b"ab")
    params = dict(temperature=0, max_tokens=20)
    plain = generate(fake_engine(FakeModel(script=script)), [list(b"xx")],
                     SamplingParams(**params))[0].outputs[0]
    assert plain.text == "ab" * 10
    penalized = generate(fake_engine(FakeModel(script=script)), [list(b"xx")],
                         SamplingParams(frequency_penalty=2.0, **params))[0].outputs[0]
    assert set(penalized.text[:8]) == {"a", "b"} and set(penalized.token_ids) - set(script)


def test_request_when_aborted_then_abort_chunk_output_and_blocks_freed():
    engine = fake_engine()
    rid = engine.submit(prompt(1), SamplingParams(max_tokens=50))
    engine.step()
    assert engine.collect(rid) is None
    assert engine.abort(rid, "client left") and not engine.abort(rid)
    chunks = engine.step()
    assert [(c.request_id, c.finish_reason) for c in chunks] == [(rid, "abort")]
    out = engine.collect(rid)
    assert out.outputs[0].finish_reason == "abort" and out.outputs[0].stop_reason == "client left"
    assert engine.collect(rid) is None and engine.stats().kv_blocks_used == 0


def test_decode_error_when_step_fails_then_only_that_steps_requests_abort():
    model = FakeModel()
    engine = fake_engine(model)
    a = engine.submit(prompt(1), GREEDY)
    model.fail_next = RuntimeError("device lost")
    chunks = engine.step()
    assert [c.finish_reason for c in chunks] == ["abort"]
    assert "device lost" in engine.collect(a).outputs[0].stop_reason
    b = engine.submit(prompt(1), GREEDY)
    outs, _ = run_all(engine)
    assert outs[b].outputs[0].finish_reason == "length" and engine.stats().kv_blocks_used == 0


def test_impossible_request_when_submitted_then_aborted_and_others_served():
    engine = fake_engine(max_model_len=32)
    bad = engine.submit(prompt(0, 30), SamplingParams(max_tokens=8, n=2))
    good = engine.submit(prompt(1), GREEDY)
    outs, _ = run_all(engine)
    assert [c.finish_reason for c in outs[bad].outputs] == ["abort", "abort"]
    assert "max_model_len (32)" in outs[bad].outputs[0].stop_reason
    assert outs[good].outputs[0].finish_reason == "length"


def test_stream_chunks_when_concatenated_then_equal_the_final_output():
    engine = fake_engine()
    rid = engine.submit("héllo wörld", SamplingParams(temperature=0.7, seed=3, max_tokens=30))
    outs, chunks = run_all(engine)
    c = outs[rid].outputs[0]
    assert [t for ch in chunks for t in ch.token_ids] == c.token_ids
    assert "".join(ch.text for ch in chunks) == c.text
    assert outs[rid].prompt == "héllo wörld" and outs[rid].prompt_token_ids == list(
        "héllo wörld".encode())


@pytest.mark.parametrize("bad, error, match", [
    ([], ValueError, "empty"),
    ([1, 300], ValueError, "outside the vocabulary"),
    ([1, -2], ValueError, "outside the vocabulary"),
    ([1.0, 2.0], TypeError, "token ids"),
    (np.int64(3), TypeError, "token ids"),
])
def test_bad_prompt_when_submitted_then_typed_error(bad, error, match):
    with pytest.raises(error, match=match):
        fake_engine().submit(bad, GREEDY)


def test_bad_submit_arguments_when_submitted_then_typed_errors():
    engine = fake_engine(max_waiting_requests=1)
    with pytest.raises(TypeError, match="SamplingParams"):
        engine.submit([1], {"temperature": 0})
    engine.submit([1], GREEDY, request_id="x")
    with pytest.raises(ValueError, match="already in use"):
        engine.submit([1], GREEDY, request_id="x")
    with pytest.raises(EngineOverloadedError):
        engine.submit([2], GREEDY)


def test_bad_engine_args_when_created_then_value_error_names_the_field():
    with pytest.raises(ValueError, match="max_num_seqs"):
        fake_engine(max_num_seqs=0)
    with pytest.raises(ValueError, match="kv_layout"):
        fake_engine(kv_layout="paged")
    with pytest.raises(ValueError, match="max_model_len"):
        fake_engine(max_model_len=4096)
    with pytest.raises(ValueError, match="holds no block"):
        fake_engine(kv_cache_tokens=3)


@pytest.mark.parametrize("async_scheduling", [False, True], ids=["sync", "async"])
def test_long_prompt_short_of_blocks_while_others_decode_when_no_prefix_cache_then_all_finish(
        async_scheduling):
    """A prompt chunk that cannot get its blocks waits for the decodes to free them: it
    used to preempt itself, start again from its first chunk (no prefix cache) and keep the
    decodes from running, for ever."""
    params = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
    prompts = [prompt(i, 5 + 9 * i) for i in range(5)]
    want = [o.outputs[0].token_ids for o in generate(fake_engine(), prompts, params)]
    engine = fake_engine(kv_cache_tokens=96, max_num_seqs=4, max_num_batched_tokens=8,
                         enable_prefix_caching=False, async_scheduling=async_scheduling)
    got = [o.outputs[0].token_ids for o in generate(engine, prompts, params)]
    assert got == want and engine.stats().kv_blocks_used == 0
