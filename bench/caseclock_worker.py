"""Entry point of Caseclock's worker for the benchmarks: ``python -m bench.caseclock_worker``.

By default it is exactly ``python -m worker`` (``worker.main``: the production wiring,
settings from ``CASECLOCK_...``). ``BENCH_TUNING`` (comma-separated) runs the same
``worker.main`` with settings changed that ``worker.py`` does not expose yet, to measure
what docs/BENCHMARKS.md proposes without touching it:

- ``runner``: the unsandboxed workflow runner and autoscaling pollers (options passed to
  ``temporalio.worker.Worker`` by ``worker.build_worker``);
- ``sync``: ``PRAGMA synchronous=NORMAL`` on the read model's SQLite connections (in WAL
  mode a commit survives a crash of the process; the last ones may be lost on power loss);
- ``census``: print a census of the worker's memory on SIGUSR1 (``bench.census``).
"""

import functools
import os
from typing import Any

from sqlalchemy import event
from temporalio.worker import PollerBehaviorAutoscaling, UnsandboxedWorkflowRunner

import worker
from bench import census
from caseclock.db.engine import create_engine_and_sessions
from caseclock.settings import DatabaseSettings

RUNNER_OPTIONS: dict[str, Any] = {
    "workflow_runner": UnsandboxedWorkflowRunner(),
    "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
    "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
}


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _engine_with_synchronous_normal(settings: DatabaseSettings) -> Any:
    engine, sessions = create_engine_and_sessions(settings)
    event.listen(engine.sync_engine, "connect", _synchronous_normal)
    return engine, sessions


def apply_tuning(tuning: set[str]) -> None:
    """Change the settings ``worker.run`` uses (module globals it looks up at call time)."""
    if "runner" in tuning:
        worker.Worker = functools.partial(worker.Worker, **RUNNER_OPTIONS)  # type: ignore[misc]
    if "sync" in tuning:
        worker.create_engine_and_sessions = _engine_with_synchronous_normal
    if "census" in tuning:
        census.install()


def main() -> None:
    """Run the production worker, with the asked-for settings changed."""
    apply_tuning({part for part in os.environ.get("BENCH_TUNING", "").split(",") if part})
    worker.main()


if __name__ == "__main__":
    main()
