"""Tokenizer: tokenizer.json and GGUF vocabularies, chat templates, special tokens."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from llaisys.models import CheckpointError, Tokenizer, UnsupportedModelError
from test.utils.tiny_models import SPECIAL_TOKENS, write_tiny_gguf, write_tiny_tokenizer

TEXTS = [
    "Hello world!",
    "  leading spaces,\ttabs\n\nand newlines ",
    "Unicode: héllo wörld, 你好世界, emoji 🤗 ∑",
    "<|im_start|>user\nhi<|im_end|>\n",
    "numbers 1234567 and code: def f(x): return x**2",
    "<|endoftext|>end",
]
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2? 你好"}]


@pytest.fixture
def tok_dir(tmp_path: Path) -> Path:
    write_tiny_tokenizer(tmp_path)
    return tmp_path


def _set_config(path: Path, **changes: object) -> None:
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps(cfg | changes))


def test_hf_dir_when_encoded_then_decodes_back(tok_dir: Path):
    tok = Tokenizer.from_hf_dir(tok_dir)
    for text in TEXTS:
        assert tok.decode(tok.encode(text), skip_special_tokens=False) == text


def test_special_tokens_when_encoded_then_single_ids_and_skipped_on_decode(tok_dir: Path):
    tok = Tokenizer.from_hf_dir(tok_dir)
    ids = tok.encode("<|im_start|>user<|im_end|>")
    assert ids[0] == 1 and ids[-1] == 2
    assert tok.decode(ids) == "user"
    assert tok.all_special_ids == {0, 1, 2}
    assert tok.eos_token_ids == [2] and tok.bos_token_id is None
    assert tok.token_to_id("<|im_end|>") == 2


def test_eos_ids_given_when_built_then_merged_with_eos_token(tok_dir: Path):
    assert Tokenizer.from_hf_dir(tok_dir, eos_token_ids=[0, 2]).eos_token_ids == [0, 2]


def test_chat_template_when_rendered_then_im_start_format(tok_dir: Path):
    tok = Tokenizer.from_hf_dir(tok_dir)
    assert tok.apply_chat_template(MESSAGES) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2? 你好<|im_end|>\n<|im_start|>assistant\n")
    assert not tok.apply_chat_template(MESSAGES, add_generation_prompt=False).endswith(
        "assistant\n")


def test_chat_template_jinja_file_when_present_then_overrides_config(tok_dir: Path):
    (tok_dir / "chat_template.jinja").write_text(
        "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}"
        "{{ eos_token }}{% endfor %}")
    _set_config(tok_dir, bos_token="<|endoftext|>")
    tok = Tokenizer.from_hf_dir(tok_dir)
    assert tok.apply_chat_template(MESSAGES[1:]) == \
        "<|endoftext|>[user]What is 2+2? 你好<|im_end|>"


def test_template_blocks_when_rendered_then_trimmed_like_transformers(tok_dir: Path):
    _set_config(tok_dir, chat_template=(
        "{% for m in messages %}\n    {% if m['role'] == 'user' %}\n"
        "U:{{ m['content'] | tojson }}\n    {% endif %}\n{% endfor %}"))
    tok = Tokenizer.from_hf_dir(tok_dir)
    assert tok.apply_chat_template(MESSAGES) == 'U:"What is 2+2? 你好"\n'


def test_template_raise_exception_when_rendered_then_template_error(tok_dir: Path):
    _set_config(tok_dir, chat_template="{{ raise_exception('roles must alternate') }}")
    with pytest.raises(jinja2.TemplateError, match="roles must alternate"):
        Tokenizer.from_hf_dir(tok_dir).apply_chat_template(MESSAGES)


def test_no_chat_template_when_applied_then_value_error(tok_dir: Path):
    _set_config(tok_dir, chat_template=None)
    with pytest.raises(ValueError, match="no chat template"):
        Tokenizer.from_hf_dir(tok_dir).apply_chat_template(MESSAGES)


def test_add_bos_token_when_encoded_then_bos_first_only_with_special_tokens(tok_dir: Path):
    _set_config(tok_dir, bos_token="<|endoftext|>", add_bos_token=True)
    tok = Tokenizer.from_hf_dir(tok_dir)
    assert tok.bos_token_id == 0
    assert tok.encode("hi")[0] == 0 and tok.encode("hi", add_special_tokens=False)[0] != 0


def test_missing_tokenizer_json_when_built_then_checkpoint_error(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no tokenizer.json"):
        Tokenizer.from_hf_dir(tmp_path)


def test_malformed_tokenizer_json_when_built_then_checkpoint_error(tok_dir: Path):
    (tok_dir / "tokenizer.json").write_text("{}")
    with pytest.raises(CheckpointError, match="tokenizer.json: cannot be read"):
        Tokenizer.from_hf_dir(tok_dir)


def test_sentencepiece_gguf_vocab_when_built_then_unsupported_error():
    with pytest.raises(UnsupportedModelError, match="'llama' is not supported"):
        Tokenizer.from_gguf({"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["a"]})


def test_gguf_vocab_when_built_then_specials_and_template_from_metadata(tmp_path: Path):
    from llaisys.models import load_checkpoint

    write_tiny_gguf(tmp_path / "m.gguf", "qwen2")
    tok = load_checkpoint(tmp_path / "m.gguf").tokenizer()
    assert tok.all_special_ids == {tok.token_to_id(t) for t in SPECIAL_TOKENS}
    assert tok.eos_token_ids == [2]
    assert tok.apply_chat_template(MESSAGES[1:]).startswith("<|im_start|>user\n")
    for text in TEXTS:
        assert tok.decode(tok.encode(text), skip_special_tokens=False) == text


# ------------------------------------------------------ versus transformers --

def test_hf_dir_when_compared_then_equals_transformers(tok_dir: Path, hf_required: None):
    from transformers import AutoTokenizer

    ours, theirs = Tokenizer.from_hf_dir(tok_dir), AutoTokenizer.from_pretrained(tok_dir)
    for text in TEXTS:
        ids = theirs.encode(text)
        assert ours.encode(text) == ids, text
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)
        assert ours.decode(ids, skip_special_tokens=False) == theirs.decode(ids)
    assert ours.apply_chat_template(MESSAGES) == theirs.apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])  # qwen2 split regex / GPT-2 byte level
def test_gguf_when_compared_then_equals_transformers_gguf_tokenizer(
        tmp_path: Path, arch: str, hf_required: None):
    from transformers import AutoTokenizer

    from llaisys.models import load_checkpoint

    write_tiny_gguf(tmp_path / "m.gguf", arch)
    ours = load_checkpoint(tmp_path / "m.gguf").tokenizer()
    theirs = AutoTokenizer.from_pretrained(tmp_path, gguf_file="m.gguf")
    for text in TEXTS:
        ids = theirs.encode(text)
        assert ours.encode(text) == ids, text
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)
        assert ours.decode(ids, skip_special_tokens=False) == theirs.decode(ids)
    assert ours.apply_chat_template(MESSAGES) == theirs.apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True)
