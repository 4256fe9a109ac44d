from llaisys.engine.detokenizer import IncrementalDetokenizer
from test.utils.fake_model import EOS, FakeTokenizer


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


def test_token_with_text_only_in_context_when_added_then_kept():
    """A sentencepiece-style decoder strips the first space of whatever it decodes, so "▁"
    decodes to nothing alone but to a space before a word: it must stay in the window."""
    from tokenizers import AddedToken, decoders, models
    from tokenizers import Tokenizer as Backend

    from llaisys.models.tokenizer import Tokenizer

    backend = Backend(models.WordLevel({"<s>": 0, "▁": 1, "▁Hello": 2, "<unk>": 3},
                                       unk_token="<unk>"))
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    backend.add_special_tokens([AddedToken("<s>", special=True, normalized=False)])
    tok = Tokenizer(backend, chat_template=None, special_tokens={"bos_token": "<s>"})
    detok = IncrementalDetokenizer(tok, [0])
    feed(detok, [1, 2])
    assert detok.text == tok.decode([1, 2]) == " Hello"


def test_stop_check_off_when_stop_string_appears_then_not_matched_later_either():
    detok = IncrementalDetokenizer(FakeTokenizer(), [1], stop=["a"])
    assert detok.add(ord("a"), check_stop=False) == ("a", None)
    assert detok.add(ord("b")) == ("b", None)
