"""Shared by the parity tests."""

from __future__ import annotations

import numpy as np

from llaisys.models import DecodeBatch, Model


def greedy_with_logits(model: Model, prompt: list[int], steps: int) -> tuple[list[int],
                                                                            np.ndarray]:
    """Prefill (logits of every prompt token) then one token per step; returns the generated
    tokens and the logits of every position (prompt + generated but the last)."""
    kv = model.create_kv_cache(layout="slot", n_cells=len(prompt) + steps, n_seq_max=1)
    n = len(prompt)
    out = model.decode(kv, DecodeBatch(
        tokens=np.array(prompt, np.int64), positions=np.arange(n, dtype=np.int64),
        seq_ids=np.zeros(n, np.int32), output=np.ones(n, np.int8), want_logits=True))
    rows = [out.logits]
    generated = [int(out.logits[-1].argmax())]
    for step in range(steps - 1):
        out = model.decode(kv, DecodeBatch(
            tokens=np.array([generated[-1]], np.int64),
            positions=np.array([n + step], np.int64), seq_ids=np.zeros(1, np.int32),
            want_logits=True))
        rows.append(out.logits)
        generated.append(int(out.logits[-1].argmax()))
    return generated, np.concatenate(rows)
