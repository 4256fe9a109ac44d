"""LLM: the offline entrypoint, many prompts in, one result dict per prompt out."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from ..engine import EngineArgs, EngineClient, GenerationOutput, LLMEngine, SamplingParams
from ..models.model import Model
from ..models.tokenizer import Tokenizer

Prompts = str | Sequence[str] | Sequence[Sequence[int]]
Messages = list[dict[str, Any]]


class LLM:
    """LLM(model=None | path | Model, **engine_args): model None runs the default model.

    generate() returns, per prompt and in input order, a dict with
      prompt (str or None), prompt_token_ids, text, token_ids (completion only),
      finish_reason ("stop" | "length" | "abort"), stop_reason, and logprobs when
      SamplingParams.logprobs is set (one {token id: log-probability} dict per token).
    Those fields describe sample 0; with n > 1 the dict also has "outputs", a list of n
    dicts (index, text, token_ids, finish_reason, stop_reason[, logprobs]) for every sample.
    """

    def __init__(self, model: str | os.PathLike | Model | None = None, **engine_args: Any):
        if model is None or isinstance(model, str | os.PathLike):
            engine = LLMEngine(EngineArgs(model=None if model is None else os.fspath(model),
                                          **engine_args))
        else:
            engine = LLMEngine(EngineArgs(**engine_args), model=model)
        self.client = EngineClient(engine)

    @property
    def tokenizer(self) -> Tokenizer:
        return self.client.tokenizer

    def generate(self, prompts: Prompts,
                 sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
                 use_tqdm: bool = True) -> list[dict[str, Any]]:
        inputs = _normalize_prompts(prompts)
        params = _normalize_params(sampling_params, len(inputs))
        return self._run(inputs, params, use_tqdm)

    def chat(self, messages: Messages | Sequence[Messages],
             sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
             use_tqdm: bool = True) -> list[dict[str, Any]]:
        """One conversation (a list of {"role", "content"}) or a list of them; the model's
        chat template is applied with the generation prompt."""
        if isinstance(messages, Sequence) and messages and all(isinstance(m, dict)
                                                               for m in messages):
            conversations = [messages]
        elif isinstance(messages, Sequence) and all(
                isinstance(c, Sequence) and not isinstance(c, str)
                and all(isinstance(m, dict) for m in c) for c in messages):
            conversations = list(messages)
        else:
            raise TypeError("chat() takes a conversation (list of message dicts) or a list "
                            "of conversations")
        tok = self.tokenizer
        inputs = [tok.encode(tok.apply_chat_template(c, add_generation_prompt=True),
                             add_special_tokens=False) for c in conversations]
        return self._run(inputs, _normalize_params(sampling_params, len(inputs)), use_tqdm)

    def _run(self, inputs: list[str | list[int]], params: list[SamplingParams],
             use_tqdm: bool) -> list[dict[str, Any]]:
        client = self.client
        ids: list[str] = []
        results: dict[str, GenerationOutput] = {}
        bar = tqdm(total=len(inputs), desc="Processed prompts", dynamic_ncols=True,
                   disable=not use_tqdm)
        prefill_rate = decode_rate = 0.0
        try:
            for prompt, p in zip(inputs, params, strict=True):
                ids.append(client.submit(prompt, p))
            before = client.stats()  # only step() changes the counters: one call per step
            while len(results) < len(ids):
                t0 = time.perf_counter()
                chunks = client.step()
                dt = max(time.perf_counter() - t0, 1e-9)
                after = client.stats()
                if after.prompt_tokens > before.prompt_tokens:
                    prefill_rate = (after.prompt_tokens - before.prompt_tokens) / dt
                elif after.generation_tokens > before.generation_tokens:
                    decode_rate = (after.generation_tokens - before.generation_tokens) / dt
                before = after
                # A chunk per sampled token; only the few final ones matter here.
                for rid in [c.request_id for c in chunks if c.finish_reason is not None]:
                    if rid not in results and (out := client.collect(rid)) is not None:
                        results[rid] = out
                        bar.update(1)
                bar.set_postfix_str(f"prefill {prefill_rate:.0f} tok/s, decode "
                                    f"{decode_rate:.0f} tok/s", refresh=False)
        except BaseException:  # a bad prompt, Ctrl-C: leave the engine clean for the next call
            for rid in ids:
                client.abort(rid)
            while client.has_unfinished_requests():
                client.step()
            for rid in ids:
                client.collect(rid)
            raise
        finally:
            bar.close()
        return [_as_dict(results[rid], p) for rid, p in zip(ids, params, strict=True)]


def _normalize_prompts(prompts: Prompts) -> list[str | list[int]]:
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be str, list[str] or list[list[int]], got "
                        f"{type(prompts).__name__}")
    prompts = list(prompts)
    if prompts and all(isinstance(p, int) for p in prompts):
        raise TypeError("a bare list[int] is not accepted: pass [token_ids] for one tokenized "
                        "prompt (prompts are str, list[str] or list[list[int]])")
    out: list[str | list[int]] = []
    for p in prompts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Sequence) and all(isinstance(t, int) for t in p):
            out.append(list(p))
        else:
            raise TypeError(f"each prompt must be a str or a list of token ids, got "
                            f"{type(p).__name__}")
    return out


def _normalize_params(params: SamplingParams | Sequence[SamplingParams] | None, n: int
                      ) -> list[SamplingParams]:
    if params is None:
        return [SamplingParams()] * n
    if isinstance(params, SamplingParams):
        return [params] * n
    params = list(params)
    if len(params) != n or not all(isinstance(p, SamplingParams) for p in params):
        raise ValueError(f"sampling_params must be one SamplingParams or one per prompt "
                         f"({n}), got {len(params)}")
    return params


def _as_dict(out: GenerationOutput, params: SamplingParams) -> dict[str, Any]:
    samples = []
    for c in out.outputs:
        d: dict[str, Any] = {"index": c.index, "text": c.text, "token_ids": c.token_ids,
                             "finish_reason": c.finish_reason, "stop_reason": c.stop_reason}
        if params.logprobs is not None:
            d["logprobs"] = c.logprobs
        samples.append(d)
    result = {"prompt": out.prompt, "prompt_token_ids": out.prompt_token_ids,
              **{k: v for k, v in samples[0].items() if k != "index"}}
    if params.n > 1:
        result["outputs"] = samples
    return result
