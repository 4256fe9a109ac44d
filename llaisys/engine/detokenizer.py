"""Incremental detokenization with stop strings.

Text grows token by token; a token that ends inside a multi-byte UTF-8 character (the
decoder yields U+FFFD) is held until the character completes. A stop string ends the
generation, is cut from the text and is never partially emitted: the longest tail of the
text that could still begin a stop string is withheld until it can no longer match.

With a `tokenizers` backend the window is decoded on the Rust side by a DecodeStream: the
same prefix/read window, but the prefix's text is kept instead of decoded again for every
token and no id lists cross into Rust (add() 2.73 -> 1.81 us a token on SmolLM2's
tokenizer). Where the stream cannot
start from the Python path's state it is not used (see _open_stream); a decoder that rewrites
text it already produced (not byte-level BPE, sentencepiece or WordPiece) makes the stream
fail ("invalid prefix"), and the Python path takes over from the same window.
"""

from __future__ import annotations

from typing import Protocol

from tokenizers import Tokenizer as Backend

try:
    from tokenizers.decoders import DecodeStream
except ImportError:  # tokenizers < 0.21
    DecodeStream = None

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
        self._backend = getattr(tokenizer, "backend", None)
        self._stream = _open_stream(self._backend, self._ids, skip_special_tokens)
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
        delta = self._decode_window()
        if delta:
            self._prefix, self._read = self._read, len(self._ids)
            self.text += delta
            if check_stop and self._stop:
                start = max(0, len(self.text) - len(delta) - self._max_stop + 1)
                hits = [(i, s) for s in self._stop if (i := self.text.find(s, start)) >= 0]
                if hits:
                    i, s = min(hits)
                    self.text = self.text[:i]
                    return self.flush(), s
        return self._emit(len(self.text) - self._held() if self._stop else len(self.text)), None

    def _decode_window(self) -> str | None:
        """The text the newest token completes (None while it completes nothing): the decode
        of the window past the prefix's. The stream keeps the same window as the Python path
        (_prefix/_read are kept up to date for that), so on an error it hands over for good."""
        if self._stream is not None:
            try:
                return self._stream.step(self._backend, self._ids[-1])
            except Exception:  # noqa: BLE001 - "invalid prefix": the decoder rewrote old text
                self._stream = None
        prefix_text = self._tok.decode(self._ids[self._prefix:self._read], self._skip)
        new_text = self._tok.decode(self._ids[self._prefix:], self._skip)
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            return new_text[len(prefix_text):]
        return None

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


def _open_stream(backend: Backend | None, context: list[int], skip_special_tokens: bool
                 ) -> DecodeStream | None:
    """A DecodeStream primed with the context, or None for the Python path: a tokenizer
    without a `tokenizers` backend, an old `tokenizers`, or a context whose text is empty or
    ends inside a character (the stream would then count the context as output)."""
    if DecodeStream is None or not isinstance(backend, Backend):
        return None
    stream = DecodeStream(skip_special_tokens=skip_special_tokens)
    try:
        if stream.step(backend, context) is None:
            return None
    except Exception:  # noqa: BLE001 - tokenizers < 0.22 steps one id at a time
        return None
    return stream
