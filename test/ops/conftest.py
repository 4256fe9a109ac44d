"""Operator tests run on the device that scripts/run_tests.py --device names.

On nvidia, every tensor a test makes without naming a device is made on the GPU
(Tensor.empty and Tensor.from_numpy default to it), so each test checks the GPU kernel
against the same numpy/torch reference as on the CPU. Tests of CPU-only features
(quantized weights, the forced lower SIMD paths) are skipped there, and all of them
without a CUDA build or a GPU (the test_device fixture).
"""

from __future__ import annotations

import pytest

from llaisys import DataType, DeviceType, Tensor

# Substrings of test names that exercise CPU-only features.
CPU_ONLY = ("quantized", "hand_built_block", "kernel_path")


@pytest.fixture(autouse=True)
def _op_device(test_device: str, request: pytest.FixtureRequest,
               monkeypatch: pytest.MonkeyPatch) -> None:
    if test_device != "nvidia":
        return
    if any(word in request.node.name for word in CPU_ONLY):
        pytest.skip("CPU-only feature")
    empty, from_numpy = Tensor.empty.__func__, Tensor.from_numpy.__func__

    def gpu_empty(cls, shape, dtype=DataType.F32, device=DeviceType.NVIDIA, device_id=0):
        return empty(cls, shape, dtype, device, device_id)

    def gpu_from_numpy(cls, array, dtype=None, device=DeviceType.NVIDIA, device_id=0):
        return from_numpy(cls, array, dtype, device, device_id)

    monkeypatch.setattr(Tensor, "empty", classmethod(gpu_empty))
    monkeypatch.setattr(Tensor, "from_numpy", classmethod(gpu_from_numpy))
