import pytest
from tokenizers import AddedToken, decoders, models
from tokenizers import Tokenizer as Backend

from llaisys.engine.detokenizer import IncrementalDetokenizer
from llaisys.models.tokenizer import Tokenizer
from test.utils.fake_model import EOS, FakeTokenizer
from test.utils.tiny_models import write_tiny_tokenizer


def feed(detok: IncrementalDetokenizer, ids: list[int]) -> tuple[list[str], str | None]:
    deltas = []
    for t in ids:
        delta, stop = detok.add(t)
        deltas.append(delta)
        if stop is not None:
            return deltas, stop
    return deltas, None


def test_multibyte_character_when_split_over_tokens_then_emitted_whole_once_complete():
    detok = IncrementalDetokenizer(FakeTokenizer(), [104, 105])
    deltas, _ = feed(detok, list("aé€".encode()))
    assert deltas == ["a", "", "é", "", "", "€"]
    assert detok.text == "aé€"


def test_stop_string_when_spanning_tokens_then_cut_and_never_partially_emitted():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["END"])
    deltas, stop = feed(detok, list(b"abEN") + list(b"Dxyz"))
    assert stop == "END"
    assert deltas == ["a", "b", "", "", ""] and detok.text == "ab"


def test_partial_match_when_it_stops_matching_then_held_text_is_released():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["END"])
    deltas, stop = feed(detok, list(b"xENx"))
    assert stop is None and "".join(deltas) == "xENx" and deltas[1:3] == ["", ""]


def test_several_stop_strings_when_both_match_then_earliest_wins():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["cd", "bcde"])
    _, stop = feed(detok, list(b"abcdef"))
    assert stop == "cd" and detok.text == "ab"


def test_held_text_when_flushed_at_the_end_then_emitted():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["END"])
    deltas, _ = feed(detok, list(b"aE"))
    assert deltas == ["a", ""] and detok.flush() == "E" and detok.flush() == ""


def test_special_token_when_skipped_then_adds_no_text():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1])
    assert feed(detok, [104, EOS, 105])[0] == ["h", "", "i"]
    keep = IncrementalDetokenizer(FakeTokenizer(), [1], skip_special_tokens=False)
    assert "".join(feed(keep, [104, EOS])[0]) == "h</s>"


class CountingTokenizer(FakeTokenizer):
    """Counts the ids it decodes."""

    decoded_ids = 0

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        self.decoded_ids += len(ids)
        return super().decode(ids, skip_special_tokens)


def test_long_run_of_tokens_without_text_when_added_then_each_decode_stays_short():
    tok = CountingTokenizer()
    detok = IncrementalDetokenizer(tok, [1])
    deltas, _ = feed(detok, [104] + [EOS] * 500 + [tok.vocab_size + 7] * 500 + [105])
    assert "".join(deltas) == "hi"
    assert tok.decoded_ids < 10 * 1002  # a window spanning the run would decode ~10^6 ids


def sentencepiece_like_tokenizer() -> Tokenizer:
    """<s>, "▁" and "▁Hello", decoded as sentencepiece does: "▁" becomes a space and the
    first space of a decode is stripped."""
    backend = Backend(models.WordLevel({"<s>": 0, "▁": 1, "▁Hello": 2, "<unk>": 3},
                                       unk_token="<unk>"))
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    backend.add_special_tokens([AddedToken("<s>", special=True, normalized=False)])
    return Tokenizer(backend, chat_template=None, special_tokens={"bos_token": "<s>"})


def test_token_with_text_only_in_context_when_added_then_kept():
    """A sentencepiece-style decoder strips the first space of whatever it decodes, so "▁"
    decodes to nothing alone but to a space before a word: it must stay in the window."""
    tok = sentencepiece_like_tokenizer()
    detok = IncrementalDetokenizer(tok, [0])
    feed(detok, [1, 2])
    assert detok.text == tok.decode([1, 2]) == " Hello"


def test_stop_check_off_when_stop_string_appears_then_not_matched_later_either():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["a"])
    assert detok.add(ord("a"), check_stop=False) == ("a", None)
    assert detok.add(ord("b")) == ("b", None)


# --- the DecodeStream path (a `tokenizers` backend) against the Python path -------------

class PythonPath:
    """The same tokenizer without its `tokenizers` backend: the detokenizer's Python path."""

    def __init__(self, tok):
        self._tok = tok
        self.vocab_size = tok.vocab_size
        self.all_special_ids = tok.all_special_ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._tok.decode(ids, skip_special_tokens)


def assert_paths_agree(tok, prompt: list[int], ids: list[int], *, streamed: bool = True,
                       **kwargs) -> IncrementalDetokenizer:
    """Both paths give the same deltas, stop and text token by token (until a stop string
    matches); returns the streamed detokenizer."""
    fast = IncrementalDetokenizer(tok, prompt, **kwargs)
    assert (fast._stream is not None) == streamed
    ref = IncrementalDetokenizer(PythonPath(tok), prompt, **kwargs)
    assert ref._stream is None
    for t in ids:
        delta, stop = fast.add(t)
        assert (delta, stop) == ref.add(t) and fast.text == ref.text, t
        if stop is not None:  # the engine ends the sequence
            return fast
    assert fast.flush() == ref.flush()
    return fast


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok")
    write_tiny_tokenizer(path, style="qwen2")
    return Tokenizer.from_hf_dir(path)


TRICKY = "héllo 你好世界 🤗🤗 naïve<|im_end|> café END done 😀x"


@pytest.mark.parametrize("skip", [True, False])
def test_stream_when_multibyte_chars_and_special_tokens_then_same_text_as_python_path(
        bpe: Tokenizer, skip: bool):
    ids = bpe.encode(TRICKY, add_special_tokens=False)
    assert any(bpe.decode([t]).endswith("\ufffd") for t in ids)  # characters split over ids
    fast = assert_paths_agree(bpe, bpe.encode("Hello"), ids, skip_special_tokens=skip)
    assert fast.text == bpe.decode(ids, skip_special_tokens=skip)


def test_stream_when_stop_string_spans_tokens_then_same_cut_as_python_path(bpe: Tokenizer):
    ids = bpe.encode(TRICKY, add_special_tokens=False)
    fast = assert_paths_agree(bpe, bpe.encode("Hello"), ids, stop=["EN", "界 🤗"])
    assert fast.text == "héllo 你好世"


def test_context_ending_inside_a_character_when_opened_then_python_path(bpe: Tokenizer):
    emoji = bpe.encode("🤗", add_special_tokens=False)
    assert len(emoji) > 1
    assert_paths_agree(bpe, bpe.encode("Hi ") + emoji[:-1], [emoji[-1], *bpe.encode(" ok")],
                       streamed=False)


def test_sentencepiece_leading_space_when_streamed_then_same_as_python_path():
    tok = sentencepiece_like_tokenizer()
    fast = assert_paths_agree(tok, [0, 2], [1, 2, 0, 2, 1])
    assert fast.text == "  Hello Hello "


def test_decoder_rewriting_emitted_text_when_streamed_then_python_path_takes_over():
    """Fuse + Replace("ab") rewrites text across tokens: the stream raises (invalid prefix)
    and the Python path continues from the same window."""
    backend = Backend(models.WordLevel({"x": 0, "a": 1, "b": 2, "<unk>": 3}, unk_token="<unk>"))
    backend.decoder = decoders.Sequence([decoders.Fuse(), decoders.Replace("ab", "X")])
    tok = Tokenizer(backend, chat_template=None, special_tokens={})
    fast = assert_paths_agree(tok, [0], [1, 2, 0, 1, 0])
    assert fast._stream is None
