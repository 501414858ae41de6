"""The floor: the smallest deadline workflow on the same Temporal server, and its worker.

``FloorDeadline`` writes an "opened" row, waits on one timer (the deadline) or one signal
(the clock was met), writes an "alert" row by activity if the timer fired, and then stays
open like a case. An update writes an "event" row and returns once it is written, the floor
of Caseclock's ``record_event``. No codec, no read model, no directory: what is left is the
cost of Temporal itself.

Run the worker with ``python -m bench.floor_worker ADDRESS TASK_QUEUE ROWS_DB`` (a module of
its own, so the sandbox never re-imports an entry point).
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorAutoscaling,
    UnsandboxedWorkflowRunner,
    Worker,
)

from bench import rows

TIMEOUT = timedelta(seconds=30)
CACHE = 2000  # Caseclock's default worker cache, so both workers hold the same


@dataclass
class FloorInput:
    """The case key and its deadline (seconds since the epoch)."""

    key: str
    due_epoch: float


@dataclass
class RowInput:
    """One row to write."""

    kind: str
    key: str


class FloorActivities:
    """The floor's one activity: write one row."""

    def __init__(self, rows_db: Path) -> None:
        self._rows_db = rows_db

    @activity.defn(name="floor_write_row")
    async def write_row(self, row: RowInput) -> None:
        """Insert the row (a thread, as a sync driver would run under an async worker)."""
        await asyncio.to_thread(rows.insert, self._rows_db, row.kind, row.key)


@workflow.defn(name="FloorDeadline")
class FloorDeadline:
    """One timer, one signal wait, one activity per alert: the floor of a deadline."""

    def __init__(self) -> None:
        self._met = False

    @workflow.run
    async def run(self, case: FloorInput) -> None:
        """Open, wait for the deadline or the signal, alert if the deadline came first."""
        await workflow.execute_activity(
            "floor_write_row", RowInput("opened", case.key), start_to_close_timeout=TIMEOUT
        )
        due_in = max(case.due_epoch - workflow.now().timestamp(), 0.001)
        try:
            await workflow.wait_condition(lambda: self._met, timeout=timedelta(seconds=due_in))
        except TimeoutError:
            await workflow.execute_activity(
                "floor_write_row", RowInput("alert", case.key), start_to_close_timeout=TIMEOUT
            )
        await workflow.wait_condition(lambda: self._met)

    @workflow.signal
    def met(self) -> None:
        """The clock was met: stop waiting."""
        self._met = True

    @workflow.update
    async def event(self, row: RowInput) -> None:
        """Record an event; returns once its row is written."""
        await workflow.execute_activity("floor_write_row", row, start_to_close_timeout=TIMEOUT)


def build_floor_worker(client: Client, task_queue: str, rows_db: Path, tuned: bool) -> Worker:
    """The floor worker: Caseclock's cache size; SDK defaults unless ``tuned``."""
    options: dict[str, object] = {}
    if tuned:
        options = {
            "workflow_runner": UnsandboxedWorkflowRunner(),
            "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
            "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
        }
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorDeadline],
        activities=[FloorActivities(rows_db).write_row],
        max_cached_workflows=CACHE,
        **options,  # type: ignore[arg-type]
    )
