"""SamplingParams: how one request's tokens are chosen and when its generation stops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The core reads temperature, top_p and min_p as float32, top_k as int32 and the seed as
# uint64: a value valid here must stay valid there, or its whole batch step fails.
_INT32, _UINT64 = 2**31, 2**64


@dataclass
class SamplingParams:
    """Every control a vLLM user expects; invalid values raise ValueError naming the field.

    temperature 0 is greedy. top_k <= 0, top_p 1 and min_p 0 turn those filters off.
    With a seed, the output does not depend on what else is in the batch. logprobs=k returns,
    for each sampled token, the log-probabilities of the top k tokens and of the sampled one.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int = 16
    min_tokens: int = 0
    stop: list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logprobs: int | None = None
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        checks = [
            ("n", _is_int(self.n) and self.n >= 1, "an integer >= 1"),
            ("temperature", _is_num(self.temperature) and self.temperature >= 0
             and np.isfinite(_f32(self.temperature)), ">= 0 and finite as a float32"),
            ("top_p", _is_num(self.top_p) and 0 < self.top_p <= 1 and _f32(self.top_p) > 0,
             "in (0, 1] (and > 0 as a float32)"),
            ("top_k", _is_int(self.top_k) and -_INT32 <= self.top_k < _INT32,
             "a 32-bit integer (<= 0: off)"),
            ("min_p", _is_num(self.min_p) and 0 <= self.min_p <= 1, "in [0, 1]"),
            ("seed", self.seed is None or (_is_int(self.seed) and 0 <= self.seed < _UINT64),
             "None or an integer in [0, 2**64)"),
            ("max_tokens", _is_int(self.max_tokens) and self.max_tokens >= 1,
             "an integer >= 1"),
            ("min_tokens", _is_int(self.min_tokens) and 0 <= self.min_tokens,
             "an integer >= 0"),
            ("stop", self.stop is None or (isinstance(self.stop, list | tuple) and all(
                isinstance(s, str) and s for s in self.stop)), "a list of non-empty strings"),
            ("stop_token_ids", self.stop_token_ids is None or (
                isinstance(self.stop_token_ids, list | tuple)
                and all(_is_int(t) and t >= 0 for t in self.stop_token_ids)),
             "a list of token ids >= 0"),
            ("presence_penalty", _is_num(self.presence_penalty)
             and -2 <= self.presence_penalty <= 2, "in [-2, 2]"),
            ("frequency_penalty", _is_num(self.frequency_penalty)
             and -2 <= self.frequency_penalty <= 2, "in [-2, 2]"),
            ("repetition_penalty", _is_num(self.repetition_penalty)
             and self.repetition_penalty > 0, "> 0"),
            ("logprobs", self.logprobs is None or (_is_int(self.logprobs) and self.logprobs >= 0),
             "None or an integer >= 0"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name} must be {want}, got "
                                 f"{getattr(self, name)!r}")
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"SamplingParams.min_tokens ({self.min_tokens}) must be <= "
                             f"max_tokens ({self.max_tokens})")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def has_penalties(self) -> bool:
        return (self.presence_penalty != 0 or self.frequency_penalty != 0
                or self.repetition_penalty != 1)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _f32(v: float) -> float:
    try:
        with np.errstate(over="ignore"):
            return float(np.float32(v))
    except OverflowError:  # an int past any float: infinite as a float32 too
        return float("inf")


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v
