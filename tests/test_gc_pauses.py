"""Long garbage-collection pauses are logged with their generation and length, short ones not."""

import gc
import time

from structlog.testing import capture_logs

from caseclock.gc_pauses import PauseReporter, collect_less_often, report_long_pauses


def test_a_collection_longer_than_the_threshold_is_logged() -> None:
    reporter = PauseReporter(threshold_ms=5)
    with capture_logs() as logs:
        reporter("start", {"generation": 2})
        time.sleep(0.01)
        reporter("stop", {"generation": 2, "collected": 7})
        reporter("start", {"generation": 0})
        reporter("stop", {"generation": 0, "collected": 0})
    assert len(logs) == 1
    assert logs[0]["event"] == "long garbage collection"
    assert logs[0]["generation"] == 2
    assert logs[0]["collected"] == 7
    assert logs[0]["ms"] >= 10


def test_the_reporter_hooks_into_real_collections() -> None:
    reporter = report_long_pauses(threshold_ms=0)
    try:
        with capture_logs() as logs:
            gc.collect()
    finally:
        gc.callbacks.remove(reporter)
    assert any(entry["event"] == "long garbage collection" for entry in logs)


def test_the_young_generation_is_collected_less_often() -> None:
    before = gc.get_threshold()
    try:
        collect_less_often(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)
