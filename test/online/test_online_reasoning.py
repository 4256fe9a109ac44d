"""DeepSeek-R1-style reasoning split: <think>...</think> -> reasoning_content (mirrored as
reasoning), the rest -> content; with the template having opened <think> already; streamed
deltas never carry a partial tag."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from llaisys.server.reasoning import ReasoningParser, prompt_opens_reasoning, split_reasoning
from test.online.fake_engine import FakeEngine, FakeTokenizer
from test.online.server_support import MODEL, RunningServer, open_stream

THOUGHT = "<think>I should add 2 and 2.</think>The answer is 4."


@pytest.mark.parametrize("text,opened,want", [
    (THOUGHT, False, ("I should add 2 and 2.", "The answer is 4.")),
    ("I should add.</think>Four.", True, ("I should add.", "Four.")),
    ("No reasoning here.", False, ("", "No reasoning here.")),
    ("<think>unfinished thought", False, ("unfinished thought", "")),
    ("a <thin b", False, ("", "a <thin b")),
    ("x</think>y<think>z</think>w", True, ("xz", "yw")),
])
def test_split_when_tags_vary_then_reasoning_and_content_separate(text, opened, want):
    assert split_reasoning(text, in_reasoning=opened) == want


@pytest.mark.parametrize("opened,text", [(False, THOUGHT), (True, "Hmm, 2+2.</think>Four.")])
def test_stream_when_fed_one_char_at_a_time_then_no_partial_tag_and_same_split(opened, text):
    parser = ReasoningParser(in_reasoning=opened)
    reasoning, content = [], []
    for ch in text:
        r, c = parser.feed(ch)
        for piece in (r, c):
            assert "<" not in piece and ">" not in piece, piece
        reasoning.append(r)
        content.append(c)
    r, c = parser.flush()
    assert ("".join(reasoning) + r, "".join(content) + c) == split_reasoning(
        text, in_reasoning=opened)


def test_prompt_when_template_ends_with_think_then_reasoning_is_open():
    assert prompt_opens_reasoning("<｜Assistant｜><think>\n")
    assert not prompt_opens_reasoning("<|im_start|>assistant\n")


class OpeningTokenizer(FakeTokenizer):
    """A chat template that opens <think> itself, as DeepSeek-R1's newer template does."""

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            add_generation_prompt: bool = True) -> str:
        return super().apply_chat_template(messages, add_generation_prompt) + "<think>\n"


def reply(text: str):
    return lambda prompt, params, index: text


@pytest.mark.parametrize("opened", [False, True])
def test_chat_when_model_thinks_then_reasoning_content_split_streamed_and_not(opened):
    fake = FakeEngine(script=reply("Hmm, 2+2.</think>Four." if opened else THOUGHT))
    if opened:
        fake.tokenizer = OpeningTokenizer()
    want_reasoning = "Hmm, 2+2." if opened else "I should add 2 and 2."
    want_content = "Four." if opened else "The answer is 4."
    with RunningServer(fake) as srv:
        status, body = srv.request("POST", "/v1/chat/completions",
                                   {"messages": [{"role": "user", "content": "2+2?"}]})
        assert status == 200
        message = body["choices"][0]["message"]
        assert message["content"] == want_content
        assert message["reasoning_content"] == message["reasoning"] == want_reasoning

        conn, resp = open_stream(srv.port, "/v1/chat/completions",
                                 {"model": MODEL, "stream": True,
                                  "messages": [{"role": "user", "content": "2+2?"}]})
        raw = resp.read().decode()
        conn.close()
        deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in raw.split("\n\n")
                  if e.startswith("data: {")]
        reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
        assert reasoning == "".join(d.get("reasoning", "") for d in deltas) == want_reasoning
        assert "".join(d.get("content") or "" for d in deltas) == want_content
        assert "think>" not in raw


def test_completions_when_model_thinks_then_text_is_left_raw():
    with RunningServer(FakeEngine(script=reply(THOUGHT))) as srv:
        r = srv.client().completions.create(model=MODEL, prompt="2+2?", max_tokens=100)
        assert r.choices[0].text == THOUGHT
