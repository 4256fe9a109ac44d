"""Fuzzing the loaders: truncated and corrupted safetensors and GGUF files, malformed
safetensors headers and config.json variants. Each case loads the checkpoint in a worker
process (so a hang or a native crash is caught and named, not fatal to the run) and, when it
loads, decodes one token. The contract: it loads, or it raises a typed error
(CheckpointError, UnsupportedModelError or a core LlaisysError) whose message names the
file or the config; never a crash, never a hang.

Hypothesis runs a fixed, derandomized budget per target; stored cases that once failed are
@example-s.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import struct
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llaisys.errors import LlaisysError
from llaisys.models import CheckpointError, UnsupportedModelError
from test.utils.tiny_models import write_tiny_gguf, write_tiny_hf

CASE_TIMEOUT_S = 60
TYPED = (CheckpointError, UnsupportedModelError, LlaisysError)
FUZZ = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64), st.floats(allow_nan=False),
    st.text(max_size=8), st.sampled_from([0, -1, 1, 3, 2**31, 2**40, 1.5, "64", [], {}, [1]]))


def load_and_decode(path: str) -> BaseException | None:
    """Runs in the worker: the error loading or decoding raised, None if both worked."""
    from llaisys.models import Model
    from test.utils.batch_builders import CacheRunner, SeqChunk

    try:
        model = Model.load(path)
        CacheRunner(model, "slot", n_cells=8).decode([SeqChunk(0, [1, 2])])
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which judges it
        return e
    return None


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    yield pool
    pool.shutdown(cancel_futures=True)


def outcome(worker: ProcessPoolExecutor, path: Path) -> BaseException | None:
    future = worker.submit(load_and_decode, str(path))
    try:
        return future.result(timeout=CASE_TIMEOUT_S)
    except FutureTimeout:
        for proc in list(worker._processes.values()):  # a hung worker never returns
            proc.kill()
        pytest.fail(f"loading {path} hung for over {CASE_TIMEOUT_S}s")
    except BrokenProcessPool:
        pytest.fail(f"loading {path} crashed the process")


def assert_typed(error: BaseException | None, *names: str) -> None:
    """A typed error whose message names one of names (None: it loaded)."""
    if error is None:
        return
    assert isinstance(error, TYPED), f"untyped {type(error).__name__}: {error}"
    assert any(n in str(error) for n in names), f"message names none of {names}: {error}"


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny-hf"), "qwen2")


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf"
    write_tiny_gguf(path, "llama", quant="Q8_0")
    return path


def copy_hf(hf_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("case") / "model"
    shutil.copytree(hf_dir, out)
    return out


def corrupt(path: Path, cut: int | None, writes: list[tuple[int, int]]) -> None:
    """Truncates path to cut bytes (None: keeps its size), then writes bytes at offsets
    (taken modulo the size)."""
    data = bytearray(path.read_bytes())
    if cut is not None:
        data = data[: cut % max(len(data), 1)]
    for offset, value in writes:
        if data:
            data[offset % len(data)] = value
    path.write_bytes(bytes(data))


def header_region(path: Path) -> int:
    """Bytes of a safetensors file before its tensor data."""
    return 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]


BYTE_WRITES = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=4)


@FUZZ
@given(cut=st.one_of(st.none(), st.integers(0, 2**20)), writes=BYTE_WRITES,
       in_header=st.booleans())
@example(cut=0, writes=[], in_header=True)
@example(cut=7, writes=[], in_header=True)
def test_safetensors_when_truncated_or_bytes_changed_then_loads_or_typed_error(
        worker, hf_dir, tmp_path_factory, cut, writes, in_header):
    model = copy_hf(hf_dir, tmp_path_factory)
    st_file = model / "model.safetensors"
    if in_header:
        writes = [(o % header_region(st_file), v) for o, v in writes]
    corrupt(st_file, cut, writes)
    error = outcome(worker, model)
    if cut is not None:
        assert error is not None, "a truncated file loaded"
    assert_typed(error, "model.safetensors", "missing weight")


HEADER_EDITS = st.sampled_from(["dtype", "shape", "data_offsets", "drop", "entry", "whole"])


@FUZZ
@given(edit=HEADER_EDITS, index=st.integers(0, 100), value=JSON_VALUES)
@example(edit="whole", index=0, value=[1])
@example(edit="entry", index=0, value="x")
@example(edit="data_offsets", index=0, value=[5])
@example(edit="shape", index=0, value=[-1, 64])
def test_safetensors_header_when_malformed_then_loads_or_typed_error(
        worker, hf_dir, tmp_path_factory, edit, index, value):
    model = copy_hf(hf_dir, tmp_path_factory)
    st_file = model / "model.safetensors"
    raw = st_file.read_bytes()
    n = header_region(st_file)
    header = json.loads(raw[8:n])
    name = sorted(k for k in header if k != "__metadata__")[index % (len(header) - 1)]
    if edit == "whole":
        header = value
    elif edit == "entry":
        header[name] = value
    elif edit == "drop":
        del header[name]
    else:
        header[name][edit] = value
    head = json.dumps(header).encode()
    st_file.write_bytes(struct.pack("<Q", len(head)) + head + raw[n:])
    assert_typed(outcome(worker, model), "model.safetensors", "missing weight")


CONFIG_KEYS = st.sampled_from([
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "head_dim", "eos_token_id", "bos_token_id", "architectures", "model_type", "hidden_act",
    "tie_word_embeddings", "rope_scaling", "torch_dtype"])


@FUZZ
@given(key=CONFIG_KEYS, value=st.one_of(JSON_VALUES, st.just("<drop>")),
       whole=st.sampled_from([None, "[]", "5", "{", "", "\x00\xff"]))
@example(key="num_attention_heads", value=0, whole=None)
@example(key="hidden_size", value="x", whole=None)
@example(key="rope_scaling", value=[1], whole=None)
@example(key="architectures", value=5, whole=None)
@example(key="eos_token_id", value="x", whole=None)
def test_config_json_when_values_vary_then_loads_or_typed_error(
        worker, hf_dir, tmp_path_factory, key, value, whole):
    model = copy_hf(hf_dir, tmp_path_factory)
    cfg_file = model / "config.json"
    if whole is not None:
        cfg_file.write_text(whole)
    else:
        cfg = json.loads(cfg_file.read_text())
        if value == "<drop>":
            cfg.pop(key, None)
        else:
            cfg[key] = value
        cfg_file.write_text(json.dumps(cfg))
    assert_typed(outcome(worker, model), "config", "model meta", "model.safetensors",
                 "architecture")


@FUZZ
@given(cut=st.one_of(st.none(), st.integers(0, 2**20)), writes=BYTE_WRITES,
       in_metadata=st.booleans())
@example(cut=3, writes=[], in_metadata=True)
@example(cut=None, writes=[(23, 255)], in_metadata=True)
def test_gguf_when_truncated_or_bytes_changed_then_loads_or_typed_error(
        worker, gguf_file, tmp_path_factory, cut, writes, in_metadata):
    path = tmp_path_factory.mktemp("case") / "tiny.gguf"
    shutil.copy(gguf_file, path)
    if in_metadata:  # the metadata and tensor infos: the first few kilobytes
        writes = [(o % 8192, v) for o, v in writes]
    corrupt(path, cut, writes)
    assert_typed(outcome(worker, path), "tiny.gguf", "GGUF", "config")
