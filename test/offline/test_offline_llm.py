import pytest

from llaisys.engine import SamplingParams
from llaisys.entrypoints import LLM
from test.utils.fake_model import FakeModel

GREEDY = SamplingParams(temperature=0, max_tokens=6)


def make_llm(**kw) -> LLM:
    args = dict(kv_cache_tokens=512, block_size=4, max_num_seqs=8, max_num_batched_tokens=64)
    return LLM(FakeModel(), **{**args, **kw})


def test_one_string_when_generated_then_a_list_of_one_dict_with_the_contract_keys():
    out = make_llm().generate("hello", GREEDY, use_tqdm=False)
    assert isinstance(out, list) and len(out) == 1
    r = out[0]
    assert set(r) == {"prompt", "prompt_token_ids", "text", "token_ids", "finish_reason",
                      "stop_reason"}
    assert r["prompt"] == "hello" and r["prompt_token_ids"] == list(b"hello")
    assert len(r["token_ids"]) == 6 and r["finish_reason"] == "length"


def test_strings_and_token_lists_when_generated_then_results_in_input_order():
    llm = make_llm()
    texts = ["a", "bb bb", "ccc ccc ccc", "d"]
    by_text = llm.generate(texts, GREEDY, use_tqdm=False)
    by_ids = llm.generate([list(t.encode()) for t in texts], GREEDY, use_tqdm=False)
    assert [r["prompt_token_ids"] for r in by_text] == [list(t.encode()) for t in texts]
    assert [r["token_ids"] for r in by_text] == [r["token_ids"] for r in by_ids]
    assert by_ids[0]["prompt"] is None


def test_bare_token_list_when_generated_then_type_error_with_a_hint():
    with pytest.raises(TypeError, match=r"\[token_ids\]"):
        make_llm().generate([1, 2, 3], GREEDY)


@pytest.mark.parametrize("bad", [42, [["a"]], ["a", [1, "b"]], [1.5]])
def test_other_prompt_shapes_when_generated_then_type_error(bad):
    with pytest.raises(TypeError):
        make_llm().generate(bad, GREEDY, use_tqdm=False)


def test_params_per_prompt_when_given_then_each_applies_and_count_is_checked():
    llm = make_llm()
    out = llm.generate(["x", "y"], [SamplingParams(temperature=0, max_tokens=2),
                                    SamplingParams(temperature=0, max_tokens=5)], use_tqdm=False)
    assert [len(r["token_ids"]) for r in out] == [2, 5]
    with pytest.raises(ValueError, match="one per prompt"):
        llm.generate(["x", "y"], [GREEDY], use_tqdm=False)


def test_empty_prompt_list_when_generated_then_empty_result():
    assert make_llm().generate([], GREEDY, use_tqdm=False) == []


def test_n_and_logprobs_when_asked_then_outputs_list_and_logprobs_per_token():
    out = make_llm().generate("hi", SamplingParams(n=3, temperature=1.0, seed=5, max_tokens=4,
                                                  logprobs=2), use_tqdm=False)[0]
    assert [s["index"] for s in out["outputs"]] == [0, 1, 2]
    assert out["token_ids"] == out["outputs"][0]["token_ids"]
    assert all(len(s["logprobs"]) == 4 for s in out["outputs"]) and len(out["logprobs"]) == 4


def test_stop_and_min_tokens_when_generated_then_reflected_in_the_dict():
    llm = LLM(FakeModel(script=list(b"one two three ")), kv_cache_tokens=256, block_size=4)
    r = llm.generate([list(b"x" * 14)], SamplingParams(temperature=0, max_tokens=20,
                                                       stop=[" thr"]), use_tqdm=False)[0]
    assert r["text"] == "one two" and r["finish_reason"] == "stop" and r["stop_reason"] == " thr"


def test_chat_when_one_or_many_conversations_then_template_applied_per_conversation():
    llm = make_llm()
    conv = [{"role": "user", "content": "hi"}]
    one = llm.chat(conv, GREEDY, use_tqdm=False)
    many = llm.chat([conv, conv + [{"role": "assistant", "content": "yo"}]], GREEDY,
                    use_tqdm=False)
    expected = list(b"<|user|>hi\n<|assistant|>")
    assert one[0]["prompt_token_ids"] == expected == many[0]["prompt_token_ids"]
    assert len(many) == 2 and many[1]["prompt_token_ids"] != expected
    with pytest.raises(TypeError, match="conversation"):
        llm.chat("hi")


def test_progress_bar_when_enabled_then_shows_prefill_and_decode_rates(capsys):
    make_llm().generate(["a", "b"], GREEDY, use_tqdm=True)
    err = capsys.readouterr().err
    assert "Processed prompts" in err and "prefill" in err and "decode" in err


def test_bad_prompt_among_good_ones_when_generated_then_error_and_engine_left_clean():
    llm = make_llm()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llm.generate([[1, 2], [1, 10_000]], GREEDY, use_tqdm=False)
    assert not llm.client.has_unfinished_requests()
    assert llm.client.stats().kv_blocks_used == 0
    assert len(llm.generate([[1, 2]], GREEDY, use_tqdm=False)[0]["token_ids"]) == 6
