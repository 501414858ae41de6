"""Scenario 5, memory and storage per open case, at three sizes up to N.

Caseclock and the floor open cases in three equal steps up to ``--n`` on one server and
worker; after each step, once every case is opened and its first facts are written, the
worker's resident memory, the dev server's, and the dev server's SQLite bytes are read.
The worker cache is Caseclock's default, 2,000 workflows, for both: past 2,000 open cases
the worker's memory should stop growing while Temporal's storage keeps growing with the
cases. The DBOS peer has no cache to evict into (every open workflow is a coroutine in its
process), so it gets a fresh process per size, with all workflows waiting.

Run: ``python -m bench.s5_memory --n 3000 --repeats 1``.
"""

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import scenario
from bench.arms import caseclock_arm, child_protection, dbos_arm, floor_arm, referral
from bench.common import ProcessCpu, dev_server_pid, wait_until

NAME = "s5_memory"
TITLE = "5. Memory and storage per open case"
DEFAULTS = {"n": 3000, "repeats": 1}
HEADLINE = [
    "worker_rss_mib_at_n",
    "worker_rss_kib_per_case",
    "temporal_kib_per_case",
    "dev_server_rss_mib_at_n",
]
STEPS = 3
TIMEOUT_S = 900.0


def _sizes(n: int) -> list[int]:
    return [n * step // STEPS for step in range(1, STEPS + 1)]


def _figures(points: list[dict[str, float]], base_bytes: int, base_rss: float) -> dict[str, Any]:
    last = points[-1]
    cases = last["open_cases"]
    return {
        "worker_rss_mib_at_n": last["worker_rss_mib"],
        "worker_rss_kib_per_case": round((last["worker_rss_mib"] - base_rss) * 1024 / cases, 2),
        "temporal_kib_per_case": round((last["storage_bytes"] - base_bytes) / 1024 / cases, 2),
        "dev_server_rss_mib_at_n": last.get("dev_server_rss_mib", 0.0),
        "points": points,
    }


async def caseclock(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Open referrals in steps; read memory and storage after each."""
    definition = child_protection()
    async with caseclock_arm(folder, tuning) as arm:
        server = ProcessCpu(dev_server_pid(arm.server))
        base_bytes, base_rss = arm.temporal_bytes(), arm.worker.cpu.rss_mib()
        points: list[dict[str, float]] = []
        done = 0
        for size in _sizes(n):
            await arm.open_cases(
                f"S5-{size}", size - done, lambda ref, now: [referral(ref, now)], definition
            )
            done = size

            async def settled(size: int = size) -> bool:
                arm.worker.check_alive()
                return await arm.clocks() >= size

            await wait_until(settled, TIMEOUT_S, 0.5)
            time.sleep(2)  # noqa: ASYNC251 (let the last tasks finish; nothing else runs)
            points.append(
                {
                    "open_cases": size,
                    "worker_rss_mib": arm.worker.cpu.rss_mib(),
                    "dev_server_rss_mib": server.rss_mib(),
                    "storage_bytes": arm.temporal_bytes(),
                }
            )
        return _figures(points, base_bytes, base_rss)


async def floor(n: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Start floor workflows in steps; read memory and storage after each."""
    async with floor_arm(folder, tuning) as arm:
        server = ProcessCpu(dev_server_pid(arm.server))
        base_bytes, base_rss = arm.temporal_bytes(), arm.worker.cpu.rss_mib()
        points: list[dict[str, float]] = []
        done = 0
        due = datetime.now(UTC) + timedelta(days=1)
        for size in _sizes(n):
            await arm.open_cases(f"S5-{size}", size - done, due)
            done = size

            async def settled(size: int = size) -> bool:
                arm.worker.check_alive()
                return await arm.opened() >= size

            await wait_until(settled, TIMEOUT_S, 0.5)
            time.sleep(2)  # noqa: ASYNC251 (as above)
            points.append(
                {
                    "open_cases": size,
                    "worker_rss_mib": arm.worker.cpu.rss_mib(),
                    "dev_server_rss_mib": server.rss_mib(),
                    "storage_bytes": arm.temporal_bytes(),
                }
            )
        return _figures(points, base_bytes, base_rss)


async def dbos(n: int, folder: Path) -> dict[str, Any]:
    """A fresh peer process per size, with every workflow open and waiting."""
    points: list[dict[str, float]] = []
    base_rss = 0.0
    base_bytes = 0
    for size in [0, *_sizes(n)]:
        arm = dbos_arm(folder / f"size-{size}")
        process = arm.launch(start=size, prefix="S5", due=time.time() + 86400)
        try:

            async def settled(size: int = size, arm: Any = arm, process: Any = process) -> bool:
                process.check_alive()
                return arm.started_seconds() is not None and await arm.opened() >= size

            await wait_until(settled, TIMEOUT_S, 0.5)
            time.sleep(2)  # noqa: ASYNC251 (as above)
            point = {
                "open_cases": size,
                "worker_rss_mib": process.cpu.rss_mib(),
                "storage_bytes": arm.storage_bytes(),
            }
        finally:
            process.stop()
        if size == 0:
            base_rss, base_bytes = point["worker_rss_mib"], int(point["storage_bytes"])
        else:
            points.append(point)
    return _figures(points, base_bytes, base_rss)


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition on each arm."""
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
