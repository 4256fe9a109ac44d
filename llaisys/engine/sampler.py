"""The parts of the sampling chain that need logits, vectorised over rows with numpy.

The core samples every row itself (temperature, top-k, top-p, min-p, seeded draw). Rows
with penalties, an unmet min_tokens or logprobs ask for logits: penalties and the EOS mask
are applied here and those rows are re-drawn with the core's sampling op on the adjusted
logits, so there is one sampling implementation.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..libllaisys import LlaisysSamplingParams
from ..tensor import DataType, Tensor
from .sequence import Sequence


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 values (numpy wraps modulo 2**64)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def seed_bases(seeds: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The per-sample part of step_seeds, fixed while a sequence runs."""
    return _mix(_mix(seeds.astype(np.uint64, copy=False))
                    ^ indices.astype(np.uint64, copy=False))


def seeds_from_bases(bases: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """step_seeds from the per-sample bases (seed_bases) and the output positions."""
    return _mix(bases ^ steps.astype(np.uint64, copy=False))


def step_seeds(seeds: np.ndarray, indices: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Each draw's seed (uint64): depends only on (request seed, sample index, output
    position), so a seeded output does not depend on the batch it ran in."""
    return seeds_from_bases(seed_bases(seeds, indices), steps)


def stop_mask_until(seq: Sequence) -> int:
    """Output tokens before which the stop tokens are masked (min_tokens, when any)."""
    return seq.params.min_tokens if seq.request.stop_token_ids else 0


def needs_adjustment(seq: Sequence) -> bool:
    """Penalties, or stop tokens to mask until min_tokens."""
    return seq.params.has_penalties or seq.num_output_tokens < stop_mask_until(seq)


def always_needs_logits(seq: Sequence) -> bool:
    """Whether every step of seq asks the core for logits (penalties or logprobs); the
    other reason, the min_tokens mask, ends with stop_mask_until."""
    return seq.params.has_penalties or seq.params.logprobs is not None


def adjust_logits(logits: np.ndarray, seqs: list[Sequence], stop_ids: list[list[int]]) -> None:
    """In place, row i for seqs[i]: presence/frequency penalties over the generated tokens,
    repetition penalty over prompt and generated tokens, and -inf on stop tokens (EOS and
    stop_token_ids) while min_tokens is not reached."""
    vocab = logits.shape[1]
    for row, (seq, stops) in enumerate(zip(seqs, stop_ids, strict=True)):
        p = seq.params
        x = logits[row]
        if p.presence_penalty or p.frequency_penalty:
            counts = np.bincount(seq.output_token_ids, minlength=vocab)[:vocab]
            x -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0)
        if p.repetition_penalty != 1:
            seen = np.unique(np.asarray(seq.token_ids, dtype=np.int64))
            seen = seen[seen < vocab]
            v = x[seen]
            x[seen] = np.where(v > 0, v / p.repetition_penalty, v * p.repetition_penalty)
        if seq.num_output_tokens < p.min_tokens and stops:
            x[[t for t in stops if t < vocab]] = -np.inf


def resample(logits: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    """Draws one id per row of logits with the core's sampling op."""
    rows = logits.shape[0]
    out = Tensor.empty([rows], DataType.I64)
    params = [LlaisysSamplingParams(float(r["temperature"]), int(r["top_k"]),
                                    float(r["top_p"]), float(r["min_p"]), int(r["seed"]))
              for r in sampling]
    ops.sample(out, Tensor.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)), params)
    return out.numpy()


def top_logprobs(logits: np.ndarray, sampled: np.ndarray, ks: list[int]) -> list[dict[int, float]]:
    """Per row: {token id: log-probability} for the top ks[i] tokens and the sampled one."""
    m = logits.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    logp = logits - lse
    result = []
    for row, k in enumerate(ks):
        k = min(k, logits.shape[1])
        ids = np.argpartition(-logp[row], k - 1)[:k] if k else np.empty(0, np.int64)
        ids = ids[np.argsort(-logp[row, ids], kind="stable")]
        entry = {int(t): float(logp[row, t]) for t in ids}
        tok = int(sampled[row])
        entry.setdefault(tok, float(logp[row, tok]))
        result.append(entry)
    return result
