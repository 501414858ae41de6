"""Entry point of Caseclock's worker for the benchmarks: ``python -m bench.caseclock_worker``.

By default it is exactly ``python -m worker`` (``worker.run``: the production wiring, settings
from ``CASECLOCK_...``). With ``BENCH_TUNED_WORKER=1`` it builds the same worker with
``worker.build_worker`` and changes only worker options (unsandboxed runner, autoscaling
pollers): that measures the setting proposed in docs/BENCHMARKS.md without touching
``worker.py``.
"""

import asyncio
import os
import signal

import httpx
import worker
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory
from caseclock.logging import configure_logging
from caseclock.settings import Settings
from temporalio.worker import PollerBehaviorAutoscaling, UnsandboxedWorkflowRunner, Worker

TUNED_OPTIONS = {
    "workflow_runner": UnsandboxedWorkflowRunner(),
    "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
    "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
}


async def run_tuned(settings: Settings) -> None:
    """``worker.run`` with the tuned worker options, and nothing else changed."""
    await upgrade_database_async(settings.database.url)
    engine, sessions = create_engine_and_sessions(settings.database)
    client = await worker.connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with httpx.AsyncClient() as http:
            read_model = ReadModel(sessions, claim_lease=worker.DELIVERY_CLAIM_LEASE)
            built = worker.build_worker(settings, client, read_model, Directory(sessions), http)
            async with Worker(**{**built.config(), **TUNED_OPTIONS}):  # type: ignore[misc]
                await stop.wait()
    finally:
        await engine.dispose()


def main() -> None:
    """Run the production worker, or the tuned one when asked."""
    if os.environ.get("BENCH_TUNED_WORKER") != "1":
        worker.main()
        return
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run_tuned(settings))


if __name__ == "__main__":
    main()
