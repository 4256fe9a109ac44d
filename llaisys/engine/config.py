"""EngineArgs (what the user sets) and their resolution against a loaded model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# CPU: memory left to the rest of the process (weights, activations, Python) when the KV
# cache is sized from a fraction of the available memory.
CPU_HEADROOM_BYTES = 2 << 30
# GPU: device memory left for activations, logits and cuBLAS beside the weights and KV.
GPU_HEADROOM_BYTES = 1 << 30
DEFAULT_KV_MEMORY_FRACTION = 0.3
# CPU, no size given: at most this much KV (vLLM's CPU default). The cache is resident from
# creation, and a share of free memory alone pins GiBs for a small model and varies with
# whatever else runs; an explicit fraction or token count is not capped.
CPU_DEFAULT_KV_BYTES = 4 << 30


@dataclass
class EngineArgs:
    model: str | None = None  # HF directory or .gguf file; None: the default model
    dtype: str | None = None
    device: str = "cpu"
    device_id: int = 0
    max_num_seqs: int = 32
    max_num_batched_tokens: int = 2048
    max_model_len: int | None = None  # None: the model's max_position
    block_size: int = 16
    kv_cache_tokens: int | None = None  # KV capacity in tokens; wins over the fraction
    kv_cache_memory_fraction: float | None = None  # of the available memory
    kv_layout: str = "block"  # "block" | "slot"
    enable_prefix_caching: bool = True
    num_threads: int | None = None
    max_waiting_requests: int | None = None
    # decode the running sequences in every step and fill the rest of the token budget with
    # prompt chunks (vLLM's chunked prefill) instead of prefill-only steps first
    mixed_batches: bool = False
    # schedule and prepare step N + 1 while the device computes step N (vLLM's async
    # scheduling); a sequence that stops on a token or a string costs one extra row of
    # compute. None: on for nvidia, where the device runs while the host works; off for the
    # CPU, whose cores do both.
    async_scheduling: bool | None = None

    def __post_init__(self) -> None:
        positive = ("max_num_seqs", "max_num_batched_tokens", "block_size")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"EngineArgs.{name} must be an integer >= 1, got {v!r}")
        for name in ("max_model_len", "kv_cache_tokens", "num_threads", "max_waiting_requests"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"EngineArgs.{name} must be None or an integer >= 1, got {v!r}")
        f = self.kv_cache_memory_fraction
        if f is not None and not 0 < f <= 1:
            raise ValueError(f"EngineArgs.kv_cache_memory_fraction must be in (0, 1], got {f!r}")
        if self.kv_layout not in ("block", "slot"):
            raise ValueError(f"EngineArgs.kv_layout must be 'block' or 'slot', got "
                             f"{self.kv_layout!r}")
        if self.device not in ("cpu", "nvidia"):
            raise ValueError(f"EngineArgs.device must be 'cpu' or 'nvidia', got {self.device!r}")
        if self.async_scheduling not in (None, True, False):
            raise ValueError(f"EngineArgs.async_scheduling must be None, True or False, got "
                             f"{self.async_scheduling!r}")


@dataclass
class EngineConfig:
    """EngineArgs resolved against the model: every limit a concrete number."""

    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    block_size: int
    num_blocks: int
    kv_layout: str
    enable_prefix_caching: bool
    max_waiting_requests: int | None
    mixed_batches: bool = False
    async_scheduling: bool = False

    @classmethod
    def resolve(cls, args: EngineArgs, *, max_position: int, kv_bytes_per_token: int
                ) -> EngineConfig:
        max_model_len = args.max_model_len or max_position
        if max_model_len > max_position:
            raise ValueError(f"EngineArgs.max_model_len ({max_model_len}) exceeds the model's "
                             f"max_position ({max_position})")
        cap = args.max_num_seqs * max_model_len
        if args.kv_cache_tokens is not None:
            tokens = args.kv_cache_tokens
        else:
            fraction = args.kv_cache_memory_fraction or DEFAULT_KV_MEMORY_FRACTION
            budget = int(available_memory(args.device, args.device_id) * fraction)
            if args.device == "cpu" and args.kv_cache_memory_fraction is None:
                budget = min(budget, CPU_DEFAULT_KV_BYTES)
            tokens = min(cap, budget // kv_bytes_per_token)
        num_blocks = tokens // args.block_size
        if num_blocks < 1:
            raise ValueError(f"KV cache of {tokens} tokens holds no block of "
                             f"{args.block_size}; raise kv_cache_tokens or the memory fraction")
        slot = args.kv_layout == "slot"
        return cls(
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            max_model_len=max_model_len,
            block_size=args.block_size,
            num_blocks=num_blocks,
            kv_layout=args.kv_layout,
            enable_prefix_caching=args.enable_prefix_caching and not slot,
            max_waiting_requests=args.max_waiting_requests,
            mixed_batches=args.mixed_batches,
            async_scheduling=(args.device == "nvidia" if args.async_scheduling is None
                              else args.async_scheduling),
        )


def available_memory(device: str, device_id: int = 0) -> int:
    """Bytes the KV cache may draw from, once the weights are loaded. CPU: MemAvailable less
    the process headroom; nvidia: the GPU's free memory less the activation headroom."""
    meminfo = Path("/proc/meminfo")
    if device == "nvidia":
        from llaisys import DeviceType
        from llaisys.runtime import device_memory

        return max(0, device_memory(DeviceType.NVIDIA, device_id)[0] - GPU_HEADROOM_BYTES)
    for line in (meminfo.read_text() if meminfo.is_file() else "").splitlines():
        if line.startswith("MemAvailable:"):
            return max(0, int(line.split()[1]) * 1024 - CPU_HEADROOM_BYTES)
    raise RuntimeError("/proc/meminfo has no MemAvailable; set EngineArgs.kv_cache_tokens")
