"""Prometheus metrics of one server (own registry, so several servers can share a process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from ..engine.outputs import EngineStats

_LATENCY_BUCKETS = (
    0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip


class ServerMetrics:
    """Counters and histograms fed by the engine loop; gauges refreshed on scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llaisys_requests", "Finished requests by finish reason", ["finish_reason"], registry=r
        )
        self.rejected = Counter(
            "llaisys_requests_rejected", "Requests refused before admission", ["reason"], registry=r
        )
        self.prompt_tokens = Counter("llaisys_prompt_tokens", "Prompt tokens", registry=r)
        self.generation_tokens = Counter(
            "llaisys_generation_tokens", "Generated tokens", registry=r
        )
        self.ttft = Histogram(
            "llaisys_time_to_first_token_seconds",
            "Time from arrival to the first generated token",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "llaisys_inter_token_latency_seconds",
            "Time between consecutive generated tokens of a request",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "llaisys_e2e_request_latency_seconds",
            "Time from arrival to the end of a request",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.running = Gauge("llaisys_num_requests_running", "Requests running", registry=r)
        self.waiting = Gauge("llaisys_num_requests_waiting", "Requests waiting", registry=r)
        self.kv_used_blocks = Gauge("llaisys_kv_cache_used_blocks", "KV blocks in use", registry=r)
        self.kv_total_blocks = Gauge("llaisys_kv_cache_total_blocks", "KV blocks", registry=r)
        self.kv_usage = Gauge(
            "llaisys_kv_cache_usage_ratio", "Fraction of KV blocks in use", registry=r
        )
        # process_resident_memory_bytes etc., to compare with weights + KV cache
        ProcessCollector(registry=r)
        self.weight_bytes = Gauge(
            "llaisys_model_weight_bytes",
            "Bytes of model weights as loaded (the core may widen unquantized ones)",
            registry=r,
        )
        self.kv_cache_bytes = Gauge(
            "llaisys_kv_cache_bytes", "Bytes of the KV cache (K and V arrays)", registry=r
        )
        self.prefix_hit_rate = Gauge(
            "llaisys_prefix_cache_hit_rate",
            "Prefix-cache hits / lookups of full prompt blocks since start",
            registry=r,
        )

    def update_engine_stats(self, stats: EngineStats) -> None:
        self.running.set(stats.running)
        self.waiting.set(stats.waiting)
        self.kv_used_blocks.set(stats.kv_blocks_used)
        self.kv_total_blocks.set(stats.kv_blocks_total)
        total = stats.kv_blocks_total
        self.kv_usage.set(stats.kv_blocks_used / total if total else 0.0)
        queries = stats.prefix_queries
        self.prefix_hit_rate.set(stats.prefix_hits / queries if queries else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as samples by name, labels rendered as name{k=v,...} (sorted keys):
    what the tests, the soak and the benchmarks read back from /metrics."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out
