"""The worker's and the API's garbage collector: collect less often, report long pauses.

A worker holding thousands of cached cases has a large heap, and a full collection walks
all of it while nothing else in the process runs. Pauses longer than a threshold are
logged (generation, milliseconds, objects collected); nothing about a case is logged.

Starting a case allocates thousands of objects (its input, state and sandbox), so with
CPython's default first threshold (700 allocations) the collector ran every few cases and
its older generations often: 14% of the worker's CPU while opening 600 cases. A first
threshold of 10,000 took that to 6% (measured with ``gc.callbacks`` in the start-rate
benchmark); 50,000 was no better and made one full collection take 0.36 s. The API keeps
CPython's threshold: its queries are short, and their tail latency is better served by
short, frequent collections (``bench/s7_queries.py``).
"""

import gc
import time
from typing import Any

import structlog

LONG_PAUSE_MS = 100.0
# Allocations (less deallocations) between young-generation collections; CPython's is 700.
YOUNG_THRESHOLD = 10_000


class PauseReporter:
    """A ``gc.callbacks`` entry that logs collections longer than ``threshold_ms``."""

    def __init__(self, threshold_ms: float = LONG_PAUSE_MS) -> None:
        self._threshold_ms = threshold_ms
        self._started = 0.0
        self._log = structlog.get_logger(__name__)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """Called by the interpreter at the start and stop of every collection."""
        if phase == "start":
            self._started = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self._started) * 1000
        if took_ms >= self._threshold_ms:
            self._log.warning(
                "long garbage collection",
                generation=info.get("generation"),
                ms=round(took_ms),
                collected=info.get("collected"),
            )


def report_long_pauses(threshold_ms: float = LONG_PAUSE_MS) -> PauseReporter:
    """Start logging long collections; returns the callback (remove it from gc.callbacks)."""
    reporter = PauseReporter(threshold_ms)
    gc.callbacks.append(reporter)
    return reporter


def collect_less_often(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Raise the young generation's threshold; the older generations keep theirs."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
