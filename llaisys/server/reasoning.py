"""Split DeepSeek-R1-style reasoning (``<think> ... </think>``) from the answer.

One parser serves streaming and non-streaming responses: feed it text deltas, it returns
the (reasoning, content) deltas that are safe to emit. A tag split across deltas is held
back until it is complete or ruled out, so no partial tag ever reaches the client.
"""

from __future__ import annotations

THINK_START = "<think>"
THINK_END = "</think>"


def prompt_opens_reasoning(prompt: str) -> bool:
    """True when the chat template already opened ``<think>`` (the model only emits
    ``</think>``), e.g. DeepSeek-R1's generation prompt ``<｜Assistant｜><think>\\n``."""
    stripped = prompt.rstrip()
    return stripped.endswith(THINK_START)


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ReasoningParser:
    """Incremental ``<think>`` splitter for one choice of one response."""

    def __init__(self, *, in_reasoning: bool = False) -> None:
        self.in_reasoning = in_reasoning
        self._pending = ""

    def feed(self, delta: str) -> tuple[str, str]:
        """Consume a text delta; return (reasoning_delta, content_delta)."""
        text = self._pending + delta
        self._pending = ""
        reasoning: list[str] = []
        content: list[str] = []
        while text:
            tag = THINK_END if self.in_reasoning else THINK_START
            out = reasoning if self.in_reasoning else content
            pos = text.find(tag)
            if pos >= 0:
                out.append(text[:pos])
                text = text[pos + len(tag) :]
                self.in_reasoning = not self.in_reasoning
                continue
            keep = _partial_tag_suffix(text, tag)
            out.append(text[: len(text) - keep])
            self._pending = text[len(text) - keep :]
            break
        return "".join(reasoning), "".join(content)

    def flush(self) -> tuple[str, str]:
        """End of output: a held-back partial tag is plain text after all."""
        text, self._pending = self._pending, ""
        return (text, "") if self.in_reasoning else ("", text)


def split_reasoning(text: str, *, in_reasoning: bool = False) -> tuple[str, str]:
    """Split a complete output into (reasoning, content)."""
    parser = ReasoningParser(in_reasoning=in_reasoning)
    r1, c1 = parser.feed(text)
    r2, c2 = parser.flush()
    return r1 + r2, c1 + c2
