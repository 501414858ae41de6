"""Scenario 3, escalation storm: N deadlines due at one instant, delivered exactly once.

Caseclock: N cases opened with police protection that started 72 hours before the storm
instant T, on the child-protection definition with the police-protection ladder cut to its
overdue rung (``bench.arms.storm_definition``), so each case raises exactly one alert at
T. Each case planned that alert when it opened; at T the sweep (``AlertSweepWorkflow``)
wakes, reads what is due and delivers it in batches through the ledger, and each alert
goes to the team manager and the service manager by inbox and email (four deliveries, each
claimed in the ledger first). The cases themselves do not wake. Floor: ``FloorDeadline`` with its
deadline at T writes one row. DBOS: the peer's workflow with its deadline at T writes one
row.

Figures: alerts delivered per second from T to the last delivery, lag from T to each
alert's last delivery (p50, p99, max), lost alerts (not fully delivered by the time-out)
and duplicates (emails with the same Message-ID received twice; rows written twice for the
floor and the peer, which have no ledger), and the cores each process kept busy.

Run: ``python -m bench.s3_storm --n 1000 --repeats 3``. Scenario 4 (``s4_outage``) is this
with the worker killed before T and restarted after it.
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import rows, scenario
from bench.arms import (
    STORM_ALERT_LEVEL,
    STORM_DELIVERIES_PER_ALERT,
    CaseclockArm,
    caseclock_arm,
    dbos_arm,
    floor_arm,
    police_protection,
    storm_definition,
)
from bench.common import ChildProcess, CpuMeter, percentile, wait_until

NAME = "s3_storm"
TITLE = "3. Escalation storm"
DEFAULTS = {"n": 1000, "repeats": 3}
HEADLINE = [
    "alerts_per_s",
    "deliveries_per_s",
    "lag_p50_s",
    "lag_p99_s",
    "lag_max_s",
    "lost",
    "duplicates",
    "catch_up_s",
]
# Setup rates to plan the storm instant by (cases opened per second on this machine, with
# room to spare: scenario 1 measured about 37 for Caseclock and the floor, 54 for DBOS); a
# run whose setup overran the instant says so in its figures.
SETUP_RATE = {"caseclock": 25.0, "floor": 25.0, "dbos": 40.0}
SETUP_MARGIN_S = 15.0
DELIVERY_TIMEOUT_S = 900.0


def _lead(arm: str, n: int) -> float:
    return n / SETUP_RATE[arm] + SETUP_MARGIN_S


def _lags(last_at: list[float], due: float) -> dict[str, float]:
    lags = [at - due for at in last_at]
    return {
        "lag_p50_s": round(percentile(lags, 50), 2),
        "lag_p99_s": round(percentile(lags, 99), 2),
        "lag_max_s": round(max(lags, default=0.0), 2),
    }


async def _outage(worker: ChildProcess, due: float, outage_s: float) -> float:
    """Kill the worker just before the instant; restart it ``outage_s`` after; when."""
    await asyncio.sleep(max(due - 3 - time.time(), 0))
    worker.kill()
    await asyncio.sleep(max(due + outage_s - time.time(), 0))
    worker.start()
    return time.time()


async def _storm_falls_due(
    worker: ChildProcess,
    meter: Callable[[], CpuMeter],
    n: int,
    due: float,
    outage_s: float | None,
    *,
    ready: Callable[[], Awaitable[int]],
    delivered: Callable[[], Awaitable[int]],
    target: int,
    began: float,
) -> tuple[float, bool, float | None, dict[str, float]]:
    """Wait for the set-up, then the instant (with an outage if asked), then every delivery.

    Returns the set-up seconds, whether the set-up overran the instant, when the worker was
    restarted (an outage) and the cores each process kept busy while delivering.
    """

    async def set_up() -> bool:
        worker.check_alive()
        return await ready() >= n

    await wait_until(set_up, max(due - time.time(), 1), 0.5)
    setup_s = time.monotonic() - began
    overran = time.time() > due - 2
    restarted = None
    if outage_s is not None:
        restarted = await _outage(worker, due, outage_s)
    else:
        await asyncio.sleep(max(due - 1 - time.time(), 0))
    # Made now, not before: after an outage the worker is a new process.
    cores = meter()
    cores.start()

    async def all_delivered() -> bool:
        worker.check_alive()
        return await delivered() >= target

    await wait_until(all_delivered, DELIVERY_TIMEOUT_S, 0.5)
    return setup_s, overran, restarted, cores.stop()


async def caseclock(n: int, folder: Path, tuning: str, outage_s: float | None) -> dict[str, Any]:
    """The storm through Caseclock's real path, counted from the delivery ledger."""
    definition = storm_definition()
    async with caseclock_arm(folder, tuning) as arm:
        due_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=_lead("caseclock", n))
        due = due_at.timestamp()
        began = time.monotonic()
        await arm.open_cases(
            "S3", n, lambda ref, now: [police_protection(ref, due_at, now)], definition
        )

        setup_s, overran, restarted, cores = await _storm_falls_due(
            arm.worker,
            arm.meter,
            n,
            due,
            outage_s,
            ready=arm.clocks,
            delivered=arm.sent,
            target=n * STORM_DELIVERIES_PER_ALERT,
            began=began,
        )
        return await _caseclock_figures(arm, n, due, setup_s, overran, restarted, cores)


async def _caseclock_figures(
    arm: CaseclockArm,
    n: int,
    due: float,
    setup_s: float,
    overran: bool,
    restarted: float | None,
    cores: dict[str, float],
) -> dict[str, Any]:
    alerts = await arm.alert_delivered_at(STORM_ALERT_LEVEL)
    complete = [last for count, last in alerts.values() if count == STORM_DELIVERIES_PER_ALERT]
    last = max(complete, default=due)
    emails = len(arm.mailbox.message_ids)
    figures: dict[str, Any] = {
        "alerts_per_s": round(len(complete) / max(last - due, 1e-3), 1),
        "deliveries_per_s": round(
            len(complete) * STORM_DELIVERIES_PER_ALERT / max(last - due, 1e-3), 1
        ),
        **_lags(complete, due),
        "delivered": len(complete),
        "lost": n - len(complete),
        "duplicates": arm.mailbox.duplicates(),
        "emails_received": emails,
        "emails_expected": n * 2,
        "setup_s": round(setup_s, 1),
        "setup_overran_instant": overran,
        "cores_busy": cores,
    }
    if restarted is not None:
        figures["catch_up_s"] = round(last - restarted, 1)
        figures["alerts_per_s"] = round(len(complete) / max(last - restarted, 1e-3), 1)
        figures["deliveries_per_s"] = round(
            len(complete) * STORM_DELIVERIES_PER_ALERT / max(last - restarted, 1e-3), 1
        )
    return figures


def _row_figures(
    rows_db: Path, n: int, due: float, setup_s: float, overran: bool, restarted: float | None
) -> dict[str, Any]:
    written = rows.times(rows_db, "alert")
    first = [times[0] for times in written.values()]
    last = max(first, default=due)
    start = restarted if restarted is not None else due
    figures: dict[str, Any] = {
        "alerts_per_s": round(len(first) / max(last - start, 1e-3), 1),
        **_lags(first, due),
        "delivered": len(first),
        "lost": n - len(first),
        "duplicates": sum(len(times) - 1 for times in written.values()),
        "setup_s": round(setup_s, 1),
        "setup_overran_instant": overran,
    }
    if restarted is not None:
        figures["catch_up_s"] = round(last - restarted, 1)
    return figures


async def floor(n: int, folder: Path, tuning: str, outage_s: float | None) -> dict[str, Any]:
    """The storm on the floor: one timer and one row per deadline."""
    async with floor_arm(folder, tuning) as arm:
        due_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=_lead("floor", n))
        due = due_at.timestamp()
        began = time.monotonic()
        await arm.open_cases("S3", n, due_at)

        setup_s, overran, restarted, cores = await _storm_falls_due(
            arm.worker,
            arm.meter,
            n,
            due,
            outage_s,
            ready=arm.opened,
            delivered=lambda: asyncio.to_thread(rows.count, arm.rows_db, "alert"),
            target=n,
            began=began,
        )
        figures = _row_figures(arm.rows_db, n, due, setup_s, overran, restarted)
        return {**figures, "cores_busy": cores}


async def dbos(n: int, folder: Path, outage_s: float | None) -> dict[str, Any]:
    """The storm on the DBOS peer: the peer's process is the worker."""
    arm = dbos_arm(folder)
    due = float(int(time.time() + _lead("dbos", n)))
    began = time.monotonic()
    process = arm.launch(start=n, prefix="S3", due=due)
    try:

        async def set_up() -> bool:
            process.check_alive()
            return await arm.opened() >= n

        await wait_until(set_up, max(due - time.time(), 1), 0.5)
        setup_s = time.monotonic() - began
        overran = time.time() > due - 2
        restarted = None
        if outage_s is not None:
            await asyncio.sleep(max(due - 3 - time.time(), 0))
            process.kill()
            await asyncio.sleep(max(due + outage_s - time.time(), 0))
            # A new process recovers the pending workflows when DBOS launches.
            process = arm.launch()
            restarted = time.time()
        meter_pid = process.cpu
        cpu_before = meter_pid.seconds()
        wall_before = time.monotonic()

        async def delivered() -> bool:
            process.check_alive()
            return await asyncio.to_thread(rows.count, arm.rows_db, "alert") >= n

        await wait_until(delivered, DELIVERY_TIMEOUT_S + max(due - time.time(), 0), 0.5)
        busy = (meter_pid.seconds() - cpu_before) / max(time.monotonic() - wall_before, 1e-3)
        figures = _row_figures(arm.rows_db, n, due, setup_s, overran, restarted)
        return {**figures, "cores_busy": {"peer process": round(busy, 2)}}
    finally:
        process.stop()


async def run_arms(
    args: argparse.Namespace, folder: Path, outage_s: float | None
) -> dict[str, dict[str, Any]]:
    """One repetition of the storm (or, with ``outage_s``, of the outage) on each arm."""
    arms = args.arms.split(",")
    found: dict[str, dict[str, Any]] = {}
    if "caseclock" in arms:
        found["caseclock"] = await caseclock(args.n, folder / "caseclock", args.tuning, outage_s)
    if "floor" in arms:
        found["floor"] = await floor(args.n, folder / "floor", args.tuning, outage_s)
    if "dbos" in arms:
        found["dbos"] = await dbos(args.n, folder / "dbos", outage_s)
    return found


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition of the storm."""
    return await run_arms(args, folder, None)


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
