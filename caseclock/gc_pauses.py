"""Report long garbage-collection pauses, so an operator can tell them from slow I/O.

A worker holding thousands of cached cases has a large heap, and a full collection walks
all of it while nothing else in the process runs. Pauses longer than a threshold are
logged (generation, milliseconds, objects collected); nothing about a case is logged.
"""

import gc
import time
from typing import Any

import structlog

LONG_PAUSE_MS = 100.0


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
