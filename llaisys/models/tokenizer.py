"""Tokenizer: `tokenizers` for text <-> ids, jinja2 for chat templates (as transformers).

Built from a Hugging Face directory (tokenizer.json + tokenizer_config.json) or from a GGUF
file's tokenizer.ggml.* metadata (byte-level BPE, rebuilt the way transformers does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, processors
from tokenizers import Tokenizer as Backend

from .config import CheckpointError, UnsupportedModelError, read_json_object

# Split patterns of GGUF tokenizer.ggml.pre values (as llama.cpp / transformers); other
# values use GPT-2's byte-level split.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GGUF_SPLITS = {
    "llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT,
    "smaug-bpe": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT, "deepseek-r1-qwen": _QWEN2_SPLIT,
}
_CONTROL, _USER_DEFINED = 3, 4  # tokenizer.ggml.token_type values


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table of byte-level vocabularies."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _template_env() -> ImmutableSandboxedEnvironment:
    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
               separators: Any = None, sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _token_text(token: Any) -> str | None:
    """tokenizer_config.json spells special tokens as strings or AddedToken dicts."""
    return token.get("content") if isinstance(token, Mapping) else token


class Tokenizer:
    def __init__(self, backend: Backend, *, chat_template: str | None,
                 special_tokens: Mapping[str, str | None], eos_token_ids: Sequence[int] = (),
                 add_bos_token: bool | None = None, add_eos_token: bool | None = None):
        """special_tokens: bos_token, eos_token, unk_token, pad_token (the template sees them).
        add_bos_token/add_eos_token: None keeps the backend's post-processor."""
        self._backend = backend
        self._special_tokens = {k: v for k, v in special_tokens.items() if v is not None}
        self._template = (_template_env().from_string(chat_template)
                          if chat_template is not None else None)
        bos, eos = self._special_tokens.get("bos_token"), self._special_tokens.get("eos_token")
        self.bos_token_id: int | None = backend.token_to_id(bos) if bos is not None else None
        eos_id = backend.token_to_id(eos) if eos is not None else None
        self.eos_token_ids: list[int] = list(dict.fromkeys(
            [*eos_token_ids, *([eos_id] if eos_id is not None else [])]))
        self.vocab_size: int = backend.get_vocab_size(with_added_tokens=True)
        self.all_special_ids: set[int] = {
            i for i, t in backend.get_added_tokens_decoder().items() if t.special}
        if add_bos_token is not None or add_eos_token is not None:
            self._set_post_processor(bool(add_bos_token), bool(add_eos_token))

    def _set_post_processor(self, add_bos: bool, add_eos: bool) -> None:
        """As transformers: BOS/EOS added around the text when asked."""
        bos, eos = self._special_tokens.get("bos_token"), self._special_tokens.get("eos_token")
        add_bos, add_eos = add_bos and bos is not None, add_eos and eos is not None
        single = f"{bos + ':0 ' if add_bos else ''}$A:0{' ' + eos + ':0' if add_eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if add_bos else ''} $B:1" \
               f"{' ' + eos + ':1' if add_eos else ''}"
        special = ([(bos, self.bos_token_id)] if add_bos else []) + \
                  ([(eos, self._backend.token_to_id(eos))] if add_eos else [])
        self._backend.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=special)

    # ------------------------------------------------------------------ use --

    @property
    def backend(self) -> Backend:
        """The `tokenizers` tokenizer (the detokenizer streams its decoding)."""
        return self._backend

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        # tokenizers takes any sequence of integers (numpy ones too): no per-id conversion
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            add_generation_prompt: bool = True) -> str:
        if self._template is None:
            raise ValueError("this tokenizer has no chat template; pass a prompt instead")
        return self._template.render(messages=list(messages),
                                     add_generation_prompt=add_generation_prompt,
                                     **self._special_tokens)

    # --------------------------------------------------------- construction --

    @classmethod
    def from_hf_dir(cls, path: Path, eos_token_ids: Sequence[int] = ()) -> Tokenizer:
        """From tokenizer.json, tokenizer_config.json and chat_template.jinja (if present)."""
        tok_file = path / "tokenizer.json"
        if not tok_file.is_file():
            raise CheckpointError(f"{path}: no tokenizer.json")
        try:
            backend = Backend.from_file(str(tok_file))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise CheckpointError(f"{tok_file}: cannot be read: {e}") from None
        cfg_file = path / "tokenizer_config.json"
        cfg = read_json_object(cfg_file) if cfg_file.is_file() else {}
        template = cfg.get("chat_template")
        if isinstance(template, list):  # named templates: [{"name", "template"}]
            template = next((t["template"] for t in template if t["name"] == "default"), None)
        if (path / "chat_template.jinja").is_file():
            template = (path / "chat_template.jinja").read_text()
        explicit = "add_bos_token" in cfg or "add_eos_token" in cfg
        return cls(
            backend,
            chat_template=template,
            special_tokens={k: _token_text(cfg.get(k))
                            for k in ("bos_token", "eos_token", "unk_token", "pad_token")},
            eos_token_ids=eos_token_ids,
            add_bos_token=cfg.get("add_bos_token", False) if explicit else None,
            add_eos_token=cfg.get("add_eos_token", False) if explicit else None,
        )

    @classmethod
    def from_gguf(cls, meta: Mapping[str, Any]) -> Tokenizer:
        """From tokenizer.ggml.* metadata: byte-level BPE ("gpt2": GPT-2, Llama 3, Qwen2,
        SmolLM vocabularies), built as transformers' GGUF loader builds it."""
        kind = meta.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise UnsupportedModelError(
                f"GGUF tokenizer model {kind!r} is not supported (supported: 'gpt2', "
                f"byte-level BPE); convert the model to a Hugging Face directory instead")
        tokens: list[str] = meta["tokenizer.ggml.tokens"]
        alphabet = _bytes_to_unicode()
        spelled = set(alphabet.values())
        vocab = {(t if set(t) <= spelled else "".join(alphabet[b] for b in t.encode())): i
                 for i, t in enumerate(tokens)}
        merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
        try:
            backend = Backend(models.BPE(vocab=vocab, merges=merges, dropout=None,
                                         continuing_subword_prefix="", end_of_word_suffix="",
                                         fuse_unk=False))
        except Exception as e:  # tokenizers raises a bare Exception, e.g. merges of unknown tokens
            raise CheckpointError(f"GGUF tokenizer metadata is inconsistent: {e}") from None
        split = _GGUF_SPLITS.get(meta.get("tokenizer.ggml.pre", ""))
        backend.pre_tokenizer = (
            pre_tokenizers.ByteLevel(add_prefix_space=False) if split is None else
            pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]))
        backend.decoder = decoders.ByteLevel()
        types = meta.get("tokenizer.ggml.token_type") or []
        backend.add_special_tokens([
            AddedToken(t, normalized=False, special=True)
            for t, k in zip(tokens, types, strict=False) if k == _CONTROL and set(t) <= spelled])
        backend.add_tokens([AddedToken(t, normalized=False, special=False)
                            for t, k in zip(tokens, types, strict=False) if k == _USER_DEFINED])

        def token(key: str) -> str | None:
            i = meta.get(f"tokenizer.ggml.{key}")
            return tokens[i] if i is not None and 0 <= i < len(tokens) else None

        return cls(
            backend,
            chat_template=meta.get("tokenizer.chat_template"),
            special_tokens={"bos_token": token("bos_token_id"),
                            "eos_token": token("eos_token_id"),
                            "unk_token": token("unknown_token_id"),
                            "pad_token": token("padding_token_id")},
            add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
            add_eos_token=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        )
