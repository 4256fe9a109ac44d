"""Runtime tables and device queries (include/llaisys/runtime.h)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

import llaisys
from llaisys import DeviceType, Tensor, runtime
from llaisys.libllaisys import LIB
from llaisys.libllaisys.types import llaisysMemcpyKind_t


@pytest.fixture
def cpu_api():
    api = LIB.llaisysGetRuntimeAPI(int(DeviceType.CPU))
    assert api
    return api.contents


def test_cpu_table_when_memcpy_through_device_memory_then_bytes_round_trip(cpu_api):
    src = np.arange(1000, dtype=np.uint8)
    back = np.zeros_like(src)
    dev = cpu_api.malloc_device(src.nbytes)
    assert dev
    try:
        cpu_api.memcpy_sync(dev, src.ctypes.data, src.nbytes, llaisysMemcpyKind_t.H2D)
        cpu_api.memcpy_sync(back.ctypes.data, dev, src.nbytes, llaisysMemcpyKind_t.D2H)
    finally:
        cpu_api.free_device(dev)
    np.testing.assert_array_equal(back, src)


def test_cpu_table_when_async_copy_on_stream_then_done_after_synchronize(cpu_api):
    src = np.arange(256, dtype=np.float32)
    dst = np.zeros_like(src)
    host = cpu_api.malloc_host(src.nbytes)
    stream = cpu_api.create_stream()
    try:
        cpu_api.memcpy_async(host, src.ctypes.data, src.nbytes, llaisysMemcpyKind_t.H2H, stream)
        cpu_api.memcpy_async(dst.ctypes.data, host, src.nbytes, llaisysMemcpyKind_t.H2H, stream)
        cpu_api.stream_synchronize(stream)
        cpu_api.device_synchronize()
    finally:
        cpu_api.destroy_stream(stream)
        cpu_api.free_host(host)
    np.testing.assert_array_equal(dst, src)


def test_cpu_table_when_device_memory_allocated_then_64_byte_aligned(cpu_api):
    ptrs = [cpu_api.malloc_device(n) for n in (1, 63, 1000)]
    try:
        assert all(p and p % 64 == 0 for p in ptrs)
    finally:
        for p in ptrs:
            cpu_api.free_device(p)


def test_cpu_backend_when_queried_then_one_device_built(cpu_api):
    assert runtime.device_built(DeviceType.CPU)
    assert runtime.device_count(DeviceType.CPU) == 1
    assert cpu_api.get_device_count() == 1


def test_thread_count_when_set_then_reported_and_default_restored():
    try:
        runtime.set_num_threads(3)
        assert runtime.get_num_threads() == 3
    finally:
        runtime.set_num_threads(0)
    assert runtime.get_num_threads() >= 1


def test_cpu_when_kernel_path_queried_then_known_name():
    assert runtime.cpu_kernel_path() in ("avx512", "avx2", "generic")


def test_generic_path_forced_when_process_starts_then_kernel_path_generic():
    code = "from llaisys import runtime; print(runtime.cpu_kernel_path())"
    env = dict(os.environ, LLAISYS_CPU_PATH="generic")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "generic"


def test_no_nvidia_device_when_tensor_created_there_then_device_error():
    if runtime.device_count(DeviceType.NVIDIA) > 0:
        pytest.skip("an NVIDIA device is present")
    with pytest.raises(llaisys.DeviceError):
        Tensor.empty((2, 2), device=DeviceType.NVIDIA)


def test_cpu_build_when_nvidia_table_requested_then_null_and_message():
    if runtime.device_built(DeviceType.NVIDIA):
        pytest.skip("this library has the NVIDIA backend")
    assert runtime.device_count(DeviceType.NVIDIA) == 0
    assert not LIB.llaisysGetRuntimeAPI(int(DeviceType.NVIDIA))
    assert "not built" in llaisys.errors.last_error()


def test_unknown_device_type_when_tensor_created_then_device_error():
    out = ctypes.c_void_p()
    shape = (ctypes.c_size_t * 1)(2)
    device_type_count = 2  # LLAISYS_DEVICE_TYPE_COUNT: one past the last device type
    status = LIB.tensorCreate(shape, 1, int(llaisys.DataType.F32), device_type_count, 0,
                              ctypes.byref(out))
    with pytest.raises(llaisys.DeviceError):
        llaisys.errors.check(status)


def test_failed_call_when_last_error_read_then_message_names_the_problem():
    with pytest.raises(llaisys.ShapeError) as info:
        Tensor.empty((2, 3)).view(7)
    assert "view" in str(info.value)
    assert info.value.status == llaisys.libllaisys.llaisysStatus_t.ERR_SHAPE
