"""Parity runs share small machines with other work: one thread for both llaisys and torch
(spinning kernel threads on an oversubscribed machine cost far more than they gain)."""

from __future__ import annotations

import pytest

from llaisys.runtime import set_num_threads


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    set_num_threads(1)
