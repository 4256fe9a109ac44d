"""Incremental detokenization with stop strings.

Text grows token by token; a token that ends inside a multi-byte UTF-8 character (the
decoder yields U+FFFD) is held until the character completes. A stop string ends the
generation, is cut from the text and is never partially emitted: the longest tail of the
text that could still begin a stop string is withheld until it can no longer match.
"""

from __future__ import annotations

from typing import Protocol

# Prompt tokens decoded ahead of the output so that tokenizers that drop a word's leading
# space at the start of a decode (sentencepiece) still produce it.
_CONTEXT_TOKENS = 5


class Decoder(Protocol):
    vocab_size: int
    all_special_ids: set[int]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str: ...


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Decoder, prompt_token_ids: list[int], *,
                 skip_special_tokens: bool = True, stop: list[str] | None = None):
        self._tok = tokenizer
        self._skip = skip_special_tokens
        # Ids that decode to nothing in any context: skipped special tokens, and ids past the
        # tokenizer's vocabulary (a model's embedding table may be larger).
        self._special = tokenizer.all_special_ids if skip_special_tokens else frozenset()
        self._vocab = tokenizer.vocab_size
        self._ids = list(prompt_token_ids[-_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)
        self._stop = tuple(stop or ())
        self._max_stop = max((len(s) for s in self._stop), default=0)
        self.text = ""  # the output text so far, a matched stop string cut off
        self._emitted = 0

    def add(self, token_id: int, *, check_stop: bool = True) -> tuple[str, str | None]:
        """Adds one token; returns (text delta to emit now, matched stop string or None)."""
        if token_id in self._special or token_id >= self._vocab:
            # Kept out of the decode window, which would otherwise widen with every such token;
            # the text is unchanged, so nothing new is emitted.
            return "", None
        self._ids.append(token_id)
        prefix_text = self._tok.decode(self._ids[self._prefix:self._read], self._skip)
        new_text = self._tok.decode(self._ids[self._prefix:], self._skip)
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            delta = new_text[len(prefix_text):]
            self._prefix, self._read = self._read, len(self._ids)
            self.text += delta
            if check_stop and self._stop:
                start = max(0, len(self.text) - len(delta) - self._max_stop + 1)
                hits = [(i, s) for s in self._stop if (i := self.text.find(s, start)) >= 0]
                if hits:
                    i, s = min(hits)
                    self.text = self.text[:i]
                    return self.flush(), s
        return self._emit(len(self.text) - self._held()), None

    def flush(self) -> str:
        """Everything not yet emitted (at the end of the generation)."""
        return self._emit(len(self.text))

    def _held(self) -> int:
        for n in range(min(self._max_stop - 1, len(self.text)), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) for s in self._stop):
                return n
        return 0

    def _emit(self, end: int) -> str:
        end = max(end, self._emitted)
        out = self.text[self._emitted:end]
        self._emitted = end
        return out
