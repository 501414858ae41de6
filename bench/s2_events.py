"""Scenario 2, events: events recorded per second, and request-to-visible latency.

Caseclock: ``--n`` open referrals, then two events on each (the referral decision, then
the assessment completed) through ``caseclock.cases.record_event``, the Temporal update the
CLI and API use, ten in flight. The update returns only once the event's facts (event,
stages, clocks) are written to the read model, so its latency is request-to-visible.
Floor: the same number of updates on ``FloorDeadline``, each returning once its row is
written. The DBOS peer is not measured here: a DBOS message is one-way, so the same figure
would need a poll of the peer's state that the other arms do not pay.

Run: ``python -m bench.s2_events --n 250 --repeats 3`` (2n events per run).
"""

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import scenario
from bench.arms import caseclock_arm, child_protection, floor_arm, gather_limited, referral
from bench.common import percentile, wait_until
from bench.floor import FloorDeadline, RowInput
from caseclock.calendar import local_date
from caseclock.cases import record_event
from caseclock.core.events import CaseEvent

NAME = "s2_events"
TITLE = "2. Events"
DEFAULTS = {"n": 250, "repeats": 3, "arms": ("caseclock", "floor")}
HEADLINE = ["events_per_s", "visible_p50_ms", "visible_p99_ms"]
IN_FLIGHT = 10
SETUP_TIMEOUT_S = 600.0
STEPS = (("referral_decision", "assessment"), ("assessment_completed", None))


def _figures(count: int, seconds: float, took: list[float]) -> dict[str, Any]:
    return {
        "events_per_s": round(count / seconds, 1),
        "visible_p50_ms": round(percentile(took, 50) * 1000, 1),
        "visible_p99_ms": round(percentile(took, 99) * 1000, 1),
        "events": count,
    }


async def caseclock(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Open n referrals, then record two events on each and time every update."""
    definition = child_protection()
    async with caseclock_arm(folder, tuning) as arm:
        await arm.open_cases("S2", n, lambda ref, now: [referral(ref, now)], definition)

        async def set_up() -> bool:
            arm.worker.check_alive()
            return await arm.clocks() >= n

        if not await wait_until(set_up, SETUP_TIMEOUT_S, 0.5):
            raise RuntimeError("the cases were not all opened in time")
        took: list[float] = []
        meter = arm.meter()
        meter.start()
        began = time.monotonic()
        for event_type, outcome in STEPS:

            async def one(
                number: int, event_type: str = event_type, outcome: Any = outcome
            ) -> None:
                ref = f"S2-{number:06d}"
                now = datetime.now(UTC)
                event = CaseEvent(
                    event_id=f"{ref}-{event_type}",
                    type=event_type,
                    effective_date=local_date(now),
                    recorded_at=now,
                    recorded_by="SW-1",
                    outcome=outcome,
                )
                await record_event(arm.client, ref, event)

            took += await gather_limited(n, IN_FLIGHT, one)
        seconds = time.monotonic() - began
        return {**_figures(len(took), seconds, took), "cores_busy": meter.stop()}


async def floor(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Start n floor workflows, then send two updates to each and time every one."""
    async with floor_arm(folder, tuning) as arm:
        await arm.open_cases("S2", n, datetime.now(UTC) + timedelta(days=1))

        async def set_up() -> bool:
            arm.worker.check_alive()
            return await arm.opened() >= n

        if not await wait_until(set_up, SETUP_TIMEOUT_S, 0.5):
            raise RuntimeError("the floor workflows were not all started in time")
        took: list[float] = []
        meter = arm.meter()
        meter.start()
        began = time.monotonic()
        for event_type, _ in STEPS:

            async def one(number: int, event_type: str = event_type) -> None:
                key = f"S2-{number:06d}"
                handle = arm.client.get_workflow_handle_for(FloorDeadline.run, f"floor/{key}")
                await handle.execute_update(FloorDeadline.event, RowInput(event_type, key))

            took += await gather_limited(n, IN_FLIGHT, one)
        seconds = time.monotonic() - began
        return {**_figures(len(took), seconds, took), "cores_busy": meter.stop()}


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition on each arm."""
    arms = args.arms.split(",")
    found: dict[str, dict[str, Any]] = {}
    if "caseclock" in arms:
        found["caseclock"] = await caseclock(args.n, folder / "caseclock", args.tuning)
    if "floor" in arms:
        found["floor"] = await floor(args.n, folder / "floor", args.tuning)
    return found


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
