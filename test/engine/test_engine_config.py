import pytest

from llaisys.engine import EngineArgs, EngineConfig, config
from llaisys.engine.config import available_memory


def resolve(**kw) -> EngineConfig:
    return EngineConfig.resolve(EngineArgs(**kw), max_position=1024, kv_bytes_per_token=1000)


def test_token_capacity_when_given_then_whole_blocks_of_it():
    cfg = resolve(kv_cache_tokens=1000, block_size=16)
    assert cfg.num_blocks == 62 and cfg.max_model_len == 1024


def test_memory_fraction_when_given_then_sized_from_available_memory_within_the_cap():
    cfg = resolve(kv_cache_memory_fraction=1e-4, max_num_seqs=64, block_size=1)
    expected = int(available_memory("cpu") * 1e-4) // 1000  # memory moves: compare loosely
    assert 0 < cfg.num_blocks and abs(cfg.num_blocks - expected) <= 0.2 * expected
    capped = resolve(kv_cache_memory_fraction=1.0, max_num_seqs=2, max_model_len=64)
    assert capped.num_blocks * capped.block_size == 2 * 64


def test_cpu_and_no_size_given_when_memory_is_plenty_then_capped_at_the_cpu_default(
        monkeypatch):
    monkeypatch.setattr(config, "available_memory", lambda device, device_id=0: 1 << 40)
    args = dict(max_num_seqs=1 << 20, block_size=1)
    assert resolve(**args).num_blocks == config.CPU_DEFAULT_KV_BYTES // 1000
    assert resolve(kv_cache_memory_fraction=0.5, **args).num_blocks == (1 << 39) // 1000


def test_slot_layout_when_resolved_then_prefix_caching_is_off():
    assert not resolve(kv_cache_tokens=64, kv_layout="slot").enable_prefix_caching


def test_cpu_available_memory_when_probed_then_positive_and_below_total():
    assert 0 < available_memory("cpu")


@pytest.mark.parametrize("field, value", [
    ("max_num_seqs", 0), ("max_num_batched_tokens", -1), ("block_size", 0),
    ("max_model_len", 0), ("kv_cache_tokens", 0), ("kv_cache_memory_fraction", 1.5),
    ("kv_layout", "paged"), ("device", "tpu"), ("num_threads", 0), ("async_scheduling", "yes"),
])
def test_bad_engine_args_when_created_then_value_error_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"EngineArgs.{field} "):
        EngineArgs(**{field: value})


def test_model_len_over_the_model_when_resolved_then_value_error():
    with pytest.raises(ValueError, match="max_position"):
        resolve(max_model_len=2048, kv_cache_tokens=64)


def test_async_scheduling_when_not_given_then_on_for_nvidia_only_and_a_given_value_wins():
    assert not resolve(kv_cache_tokens=64).async_scheduling
    assert resolve(kv_cache_tokens=64, device="nvidia").async_scheduling
    assert resolve(kv_cache_tokens=64, async_scheduling=True).async_scheduling
    assert not resolve(kv_cache_tokens=64, device="nvidia", async_scheduling=False).async_scheduling
