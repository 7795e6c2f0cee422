"""Prometheus metrics, correct under several gunicorn workers.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (``commentmod serve`` sets it), each
worker writes its samples to files there and ``/metrics`` aggregates them; the
gunicorn config marks dead workers. Without it (tests, ``flask run``) the
default in-process registry is used.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("commentmod_requests_total", "HTTP requests", ["endpoint", "status"])
LATENCY = Histogram(
    "commentmod_request_seconds",
    "HTTP request latency",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
VERDICTS = Counter("commentmod_verdicts_total", "Verdicts answered", ["verdict", "source"])
MODEL_INFO = Gauge(
    "commentmod_model_info",
    "Serving model version (value 1)",
    ["family", "version"],
    multiprocess_mode="liveall",
)
STORE_ERRORS = Counter(
    "commentmod_store_errors_total", "Database writes that failed", ["operation"]
)
CACHE_EVENTS = Counter("commentmod_cache_total", "Verdict cache lookups", ["tier", "result"])
REDIS_ERRORS = Counter(
    "commentmod_redis_errors_total", "Redis calls that failed or were skipped", ["reason"]
)


@functools.cache
def verdict_counter(verdict: str, source: str) -> Any:
    """``VERDICTS.labels(verdict, source)``, looked up once (every check counts one)."""
    return VERDICTS.labels(verdict, source)


@functools.cache
def cache_counter(tier: str, result: str) -> Any:
    """``CACHE_EVENTS.labels(tier, result)``, looked up once (every check counts one)."""
    return CACHE_EVENTS.labels(tier, result)


def render() -> tuple[bytes, str]:
    """The metrics page body and content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
