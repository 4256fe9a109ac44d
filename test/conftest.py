"""Session-wide test options, set by scripts/run_tests.py through the environment.

LLAISYS_TEST_MODEL_PATH  a Hugging Face model directory (infer/parity baselines)
LLAISYS_RUN_PARITY       auto | always | never
LLAISYS_RUN_HF           auto | always | never (HF-dependent checks outside test/parity)
LLAISYS_TEST_DEVICE      cpu | nvidia
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# The repository root goes first so `import test.utils...` finds this package, not the
# standard library's `test`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _policy(name: str) -> str:
    value = os.environ.get(name, "auto")
    if value not in ("auto", "always", "never"):
        raise pytest.UsageError(f"{name} must be auto, always or never, got {value!r}")
    return value


def _hf_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _gate(policy: str, what: str) -> None:
    """Skips under 'never' or 'auto' without transformers; 'always' lets a missing one fail."""
    if policy == "never":
        pytest.skip(f"{what} disabled by policy")
    if policy == "auto" and not _hf_available():
        pytest.skip(f"{what} needs torch and transformers")


@pytest.fixture(scope="session")
def model_path() -> Path | None:
    value = os.environ.get("LLAISYS_TEST_MODEL_PATH")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def run_parity() -> str:
    """The parity policy; tests under test/parity are gated by it automatically."""
    return _policy("LLAISYS_RUN_PARITY")


@pytest.fixture(scope="session")
def run_hf() -> str:
    return _policy("LLAISYS_RUN_HF")


@pytest.fixture(scope="session")
def test_device() -> str:
    """cpu | nvidia; tests asking for nvidia skip without a CUDA build or a GPU."""
    device = os.environ.get("LLAISYS_TEST_DEVICE", "cpu")
    if device == "nvidia":
        from llaisys import DeviceType
        from llaisys.runtime import device_count

        if device_count(DeviceType.NVIDIA) == 0:
            pytest.skip("no NVIDIA GPU, or the library was built without CUDA")
    return device


@pytest.fixture(scope="session")
def smollm2_gguf(run_hf: str, run_parity: str) -> Path:
    """The default model's GGUF, fetched on first use; skips when it cannot be fetched unless
    a policy says 'always'."""
    from llaisys.models import DefaultModelError, default_model

    try:
        return default_model()
    except DefaultModelError as e:
        if "always" in (run_hf, run_parity):
            raise
        pytest.skip(f"default model unavailable: {e}")


@pytest.fixture
def hf_required(run_hf: str) -> None:
    """Use in tests that compare with transformers outside test/parity."""
    _gate(run_hf, "HF reference check")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parity_policy = _policy("LLAISYS_RUN_PARITY")
    for item in items:
        if "test/parity" in str(item.fspath).replace(os.sep, "/"):
            if parity_policy == "never":
                item.add_marker(pytest.mark.skip(reason="parity disabled (--run-parity never)"))
            elif parity_policy == "auto" and not _hf_available():
                item.add_marker(pytest.mark.skip(reason="parity needs torch and transformers"))
