"""Scenario 1, start rate: cases started per second, up to N open cases.

Caseclock: ``open_case`` with a referral received today (the CLI and API path: calendar,
core check, start with the encrypted input), 20 starts in flight. "Opened" is the case's
row in the read model, written by the activity the workflow's first task schedules;
"settled" is when its first facts (event, stage, referral-decision clock) are recorded too,
by the second activity.
Floor: ``FloorDeadline`` started the same way; "opened" is its first activity's row.
DBOS: the peer starts its workflows in its own process; "opened" is the first step's row.
Worker memory and Temporal storage per open case at N are recorded too (scenario 5 has
the curve).

Run: ``python -m bench.s1_start --n 1000 --repeats 3``.
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import scenario
from bench.arms import (
    caseclock_arm,
    child_protection,
    dbos_arm,
    floor_arm,
    referral,
)
from bench.common import percentile, wait_until

NAME = "s1_start"
TITLE = "1. Start rate"
DEFAULTS = {"n": 1000, "repeats": 3}
HEADLINE = ["opened_per_s", "accepted_per_s", "settled_per_s", "start_p50_ms", "start_p99_ms"]
SETTLE_TIMEOUT_S = 900.0


async def _timed(starts: Awaitable[list[float]]) -> tuple[list[float], float]:
    """The starts' latencies and the instant the last one returned."""
    took = await starts
    return took, time.monotonic()


def _latency(took: list[float]) -> dict[str, float]:
    return {
        "start_p50_ms": round(percentile(took, 50) * 1000, 1),
        "start_p99_ms": round(percentile(took, 99) * 1000, 1),
    }


async def caseclock(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Open n referrals and time until every case row is in the read model."""
    definition = child_protection()
    async with caseclock_arm(folder, tuning) as arm:
        meter = arm.meter()
        meter.start()
        began = time.monotonic()
        starting = asyncio.create_task(
            _timed(arm.open_cases("S1", n, lambda ref, now: [referral(ref, now)], definition))
        )

        async def opened() -> bool:
            arm.worker.check_alive()
            return await arm.opened() >= n

        await wait_until(opened, SETTLE_TIMEOUT_S, 0.2)
        opened_s = time.monotonic() - began
        took, accepted_at = await starting
        accepted_s = accepted_at - began
        cores = meter.stop()

        async def settled() -> bool:
            return await arm.clocks() >= n

        await wait_until(settled, SETTLE_TIMEOUT_S, 0.5)
        settled_s = time.monotonic() - began
        return {
            "opened_per_s": round(n / opened_s, 1),
            "accepted_per_s": round(n / accepted_s, 1),
            "settled_per_s": round(n / settled_s, 1),
            **_latency(took),
            "worker_rss_mib": arm.worker.cpu.rss_mib(),
            "temporal_bytes_per_case": round(arm.temporal_bytes() / n),
            "cores_busy": cores,
        }


async def floor(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Start n floor workflows and time until every "opened" row is written."""
    async with floor_arm(folder, tuning) as arm:
        meter = arm.meter()
        meter.start()
        began = time.monotonic()
        due = datetime.now(UTC) + timedelta(days=1)
        starting = asyncio.create_task(_timed(arm.open_cases("S1", n, due)))

        async def opened() -> bool:
            arm.worker.check_alive()
            return await arm.opened() >= n

        await wait_until(opened, SETTLE_TIMEOUT_S, 0.2)
        opened_s = time.monotonic() - began
        took, accepted_at = await starting
        accepted_s = accepted_at - began
        cores = meter.stop()
        return {
            "opened_per_s": round(n / opened_s, 1),
            "accepted_per_s": round(n / accepted_s, 1),
            **_latency(took),
            "worker_rss_mib": arm.worker.cpu.rss_mib(),
            "temporal_bytes_per_case": round(arm.temporal_bytes() / n),
            "cores_busy": cores,
        }


async def dbos(n: int, folder: Path) -> dict[str, Any]:
    """Let the peer start n workflows and time until every "opened" row is written."""
    arm = dbos_arm(folder)
    process = arm.launch(start=n, prefix="S1", due=time.time() + 86400)
    began = time.monotonic()
    try:

        async def opened() -> bool:
            process.check_alive()
            return await arm.opened() >= n

        await wait_until(opened, SETTLE_TIMEOUT_S, 0.2)
        opened_s = time.monotonic() - began
        return {
            "opened_per_s": round(n / opened_s, 1),
            "worker_rss_mib": process.cpu.rss_mib(),
            "storage_bytes_per_case": round(arm.storage_bytes() / n),
        }
    finally:
        process.stop()


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition: each arm in turn, each on its own server."""
    arms = args.arms.split(",")
    found: dict[str, dict[str, Any]] = {}
    if "caseclock" in arms:
        found["caseclock"] = await caseclock(args.n, folder / "caseclock", args.tuning)
    if "floor" in arms:
        found["floor"] = await floor(args.n, folder / "floor", args.tuning)
    if "dbos" in arms:
        found["dbos"] = await dbos(args.n, folder / "dbos")
    return found


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
