import pytest

from llaisys.engine import SamplingParams


def test_defaults_when_created_then_match_the_contract():
    p = SamplingParams()
    assert (p.n, p.temperature, p.top_p, p.top_k, p.min_p, p.seed) == (1, 1.0, 1.0, 0, 0.0, None)
    assert (p.max_tokens, p.min_tokens, p.stop, p.stop_token_ids) == (16, 0, None, None)
    assert (p.presence_penalty, p.frequency_penalty, p.repetition_penalty) == (0.0, 0.0, 1.0)
    assert p.logprobs is None and p.skip_special_tokens and not p.ignore_eos


def test_single_stop_string_when_given_then_becomes_a_list():
    assert SamplingParams(stop="\n").stop == ["\n"]


@pytest.mark.parametrize("field, value", [
    ("n", 0), ("n", 1.5), ("temperature", -0.1), ("temperature", float("nan")),
    ("top_p", 0.0), ("top_p", 1.1), ("top_k", 2.0), ("min_p", -0.1), ("min_p", 1.5),
    ("seed", -1), ("seed", "7"), ("max_tokens", 0), ("max_tokens", True), ("min_tokens", -1),
    ("stop", [""]), ("stop", [1]), ("stop_token_ids", [-1]), ("stop_token_ids", "x"),
    ("presence_penalty", 3.0), ("frequency_penalty", -2.5), ("repetition_penalty", 0.0),
    ("logprobs", -1),
    # past what the core's sampling params hold (float32, int32, uint64)
    ("temperature", 1e39), ("temperature", 10**400), ("top_p", 5e-324), ("top_k", 2**31),
    ("seed", 2**64),
])
def test_invalid_value_when_created_then_value_error_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"SamplingParams.{field} "):
        SamplingParams(**{field: value})


def test_min_tokens_above_max_tokens_when_created_then_value_error():
    with pytest.raises(ValueError, match="min_tokens"):
        SamplingParams(min_tokens=5, max_tokens=4)


def test_valid_edge_values_when_created_then_accepted():
    p = SamplingParams(temperature=0, top_p=1, top_k=-1, min_p=1, seed=0, logprobs=0,
                       presence_penalty=-2, frequency_penalty=2, repetition_penalty=0.5)
    assert p.greedy and p.has_penalties
