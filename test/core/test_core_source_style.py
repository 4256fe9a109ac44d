"""The sources follow the project's style: C/C++/CUDA as .clang-format says, Python as ruff
says (pyproject.toml). Both tools come with the test extras."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CXX_SUFFIXES = {".h", ".hpp", ".cpp", ".cu", ".cuh"}


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="module")
def git_checkout() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")


def test_cxx_sources_when_checked_by_clang_format_then_nothing_to_change(git_checkout: None):
    files = [f for f in tracked("src", "include") if Path(f).suffix in CXX_SUFFIXES]
    assert files
    r = subprocess.run([tool("clang-format"), "--dry-run", "-Werror", *files], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]


def test_python_sources_when_checked_by_ruff_then_clean(git_checkout: None):
    r = subprocess.run([tool("ruff"), "check", "llaisys", "scripts", "test"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:]
