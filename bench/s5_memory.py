"""Scenario 5, memory and storage per open case, at sizes up to N.

Caseclock and the floor open cases in equal steps (``--steps``, three by default) up to
``--n`` on one server and worker; after each step, once every case is opened and its first
facts are written, the worker's resident memory, the dev server's, and the dev server's
SQLite bytes are read.
The worker cache is Caseclock's default, 2,000 workflows, for both: past 2,000 open cases
the worker's memory should stop growing while Temporal's storage keeps growing with the
cases. The DBOS peer has no cache to evict into (every open workflow is a coroutine in its
process): it gets a fresh process per size on the same system database, which recovers the
workflows of the earlier steps and starts the step's new ones, so every workflow is waiting
in the process when its memory is read.

Each step also records how fast its cases were opened (cases of the step over the seconds
from its first start to its last case settled; for the peer that includes its process start
and recovery) and the 1-minute load average, so a run to 50,000 gives the start rate as the
open cases grow. Run: ``python -m bench.s5_memory --n 50000 --steps 5 --repeats 1``.
With ``--tuning census`` the worker also prints a census of its memory after each step
(``bench.census``), to trace what grows.
"""

import argparse
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import scenario
from bench.arms import caseclock_arm, child_protection, dbos_arm, floor_arm, referral
from bench.common import ProcessCpu, dev_server_pid, load_average, wait_until

NAME = "s5_memory"
TITLE = "5. Memory and storage per open case"
DEFAULTS = {"n": 3000, "repeats": 1, "steps": 3}
HEADLINE = [
    "worker_rss_mib_at_n",
    "worker_rss_kib_per_case",
    "temporal_kib_per_case",
    "dev_server_rss_mib_at_n",
]
TIMEOUT_S = 1800.0


def _sizes(n: int, steps: int) -> list[int]:
    return [n * step // steps for step in range(1, steps + 1)]


def _step(size: int, added: int, began: float) -> dict[str, float]:
    """A step's size, how fast its cases were opened, and the load it ran in."""
    seconds = time.monotonic() - began
    return {
        "open_cases": size,
        "step_seconds": round(seconds, 1),
        "opened_per_s": round(added / seconds, 1),
        "load_1min": load_average()[0],
    }


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


async def caseclock(n: int, steps: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Open referrals in steps; read memory and storage after each."""
    definition = child_protection()
    async with caseclock_arm(folder, tuning) as arm:
        server = ProcessCpu(dev_server_pid(arm.server))
        base_bytes, base_rss = arm.temporal_bytes(), arm.worker.cpu.rss_mib()
        census = "census" in tuning.split(",")
        points: list[dict[str, float]] = []
        done = 0
        for size in _sizes(n, steps):
            began = time.monotonic()
            await arm.open_cases(
                f"S5-{size}", size - done, lambda ref, now: [referral(ref, now)], definition
            )

            async def settled(size: int = size) -> bool:
                arm.worker.check_alive()
                return await arm.clocks() >= size

            if not await wait_until(settled, TIMEOUT_S, 0.5):
                raise RuntimeError(f"{size:,} cases were not all opened in time")
            point = _step(size, size - done, began)
            done = size
            time.sleep(2)  # noqa: ASYNC251 (let the last tasks finish; nothing else runs)
            point["worker_rss_mib"] = arm.worker.cpu.rss_mib()
            point["dev_server_rss_mib"] = server.rss_mib()
            point["storage_bytes"] = arm.temporal_bytes()
            points.append(point)
            if census:
                arm.worker.signal(signal.SIGUSR1)  # bench.census prints to the worker's log
        return _figures(points, base_bytes, base_rss)


async def floor(n: int, steps: int, folder: Path, tuning: str) -> dict[str, Any]:
    """Start floor workflows in steps; read memory and storage after each."""
    async with floor_arm(folder, tuning) as arm:
        server = ProcessCpu(dev_server_pid(arm.server))
        base_bytes, base_rss = arm.temporal_bytes(), arm.worker.cpu.rss_mib()
        points: list[dict[str, float]] = []
        done = 0
        due = datetime.now(UTC) + timedelta(days=1)
        for size in _sizes(n, steps):
            began = time.monotonic()
            await arm.open_cases(f"S5-{size}", size - done, due)

            async def settled(size: int = size) -> bool:
                arm.worker.check_alive()
                return await arm.opened() >= size

            if not await wait_until(settled, TIMEOUT_S, 0.5):
                raise RuntimeError(f"{size:,} cases were not all opened in time")
            point = _step(size, size - done, began)
            done = size
            time.sleep(2)  # noqa: ASYNC251 (as above)
            point["worker_rss_mib"] = arm.worker.cpu.rss_mib()
            point["dev_server_rss_mib"] = server.rss_mib()
            point["storage_bytes"] = arm.temporal_bytes()
            points.append(point)
        return _figures(points, base_bytes, base_rss)


async def dbos(n: int, steps: int, folder: Path) -> dict[str, Any]:
    """A fresh peer process per size on one database, with every workflow open and waiting."""
    points: list[dict[str, float]] = []
    base_rss = 0.0
    base_bytes = 0
    arm = dbos_arm(folder)
    done = 0
    for size in [0, *_sizes(n, steps)]:
        began = time.monotonic()
        process = arm.launch(start=size - done, prefix=f"S5-{size}", due=time.time() + 86400)
        try:

            async def settled(size: int = size, process: Any = process) -> bool:
                process.check_alive()
                return arm.started_seconds() is not None and await arm.opened() >= size

            if not await wait_until(settled, TIMEOUT_S, 0.5):
                raise RuntimeError(f"{size:,} cases were not all opened in time")
            point = _step(size, size - done, began)
            done = size
            time.sleep(2)  # noqa: ASYNC251 (as above)
            point["worker_rss_mib"] = process.cpu.rss_mib()
            point["storage_bytes"] = arm.storage_bytes()
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
        found["caseclock"] = await caseclock(args.n, args.steps, folder / "caseclock", args.tuning)
    if "floor" in arms:
        found["floor"] = await floor(args.n, args.steps, folder / "floor", args.tuning)
    if "dbos" in arms:
        found["dbos"] = await dbos(args.n, args.steps, folder / "dbos")
    return found


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
