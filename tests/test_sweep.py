"""The escalation sweep, on the real dev server: many alerts due at one instant are
delivered by one sweep, each exactly once, without waking the cases; a sweep that was
stopped is started again by the next plan that needs it.
"""

import asyncio
import collections
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.sweep_activities import sweep_workflow_id
from bench.arms import police_protection, storm_definition
from caseclock.cases import open_case
from caseclock.db.alert_plan import PlanStatus
from caseclock.db.models import Delivery, Escalation, PlannedAlert
from tests.engine_stack import EngineStack, engine_stack
from tests.helpers import wait_until
from workflows.case_types import Allocation, workflow_id_for

CASES = 40
# The overdue rung tells the team manager (inbox, email, webhook) and the service manager
# (inbox, email): see tests/engine_stack.directory_seed.
PER_ALERT = 5
ALLOCATION = Allocation(team="T1", worker="SW-1")


async def count(stack: EngineStack, query: object) -> int:
    async with stack.sessions() as session:
        return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def history_length(stack: EngineStack, workflow_id: str) -> int:
    description = await stack.client.get_workflow_handle(workflow_id).describe()
    return description.raw_description.workflow_execution_info.history_length


async def all_asleep(stack: EngineStack, refs: list[str]) -> bool:
    """Whether every case has finished its work: no workflow task or activity pending.

    A case's plan is committed by its activity before the workflow task that follows it
    completes, so the plans being there does not yet mean the cases are asleep.
    """
    for ref in refs:
        description = await stack.client.get_workflow_handle(workflow_id_for(ref)).describe()
        raw = description.raw_description
        if raw.HasField("pending_workflow_task") or raw.pending_activities:
            return False
    return True


async def open_storm(stack: EngineStack, refs: list[str], due: datetime) -> None:
    definition = storm_definition()
    now = datetime.now(UTC)
    await asyncio.gather(
        *(
            open_case(
                stack.client,
                stack.settings.temporal.task_queue,
                definition,
                ref,
                ALLOCATION,
                [police_protection(ref, due, now)],
                now,
            )
            for ref in refs
        )
    )


async def test_alerts_due_at_one_instant_are_swept_once_without_waking_the_cases(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    refs = [f"ST-{number:04d}" for number in range(CASES)]
    async with engine_stack(local_env.client, tmp_path) as stack:
        await open_storm(stack, refs, due)
        planned = select(func.count()).select_from(PlannedAlert)
        await wait_until(lambda: _equals(count(stack, planned), CASES), 10, message="plans")
        await wait_until(lambda: all_asleep(stack, refs), 10, message="cases asleep")
        before = {ref: await history_length(stack, workflow_id_for(ref)) for ref in refs}
        assert datetime.now(UTC) < due, "set-up overran the instant; the test proves nothing"

        sent = select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        await wait_until(
            lambda: _equals(count(stack, sent), CASES * PER_ALERT), 30, message="delivery"
        )
        # Settle, then count again: nothing more arrives.
        await asyncio.sleep(1)
        assert await count(stack, sent) == CASES * PER_ALERT
        assert await count(stack, select(func.count()).select_from(Escalation)) == CASES
        delivered = select(func.count()).where(PlannedAlert.status == PlanStatus.DELIVERED.value)
        assert await count(stack, delivered) == CASES
        # Each manager told once, in one digest listing every case's alert (the team
        # manager and the service manager), and no email twice.
        ids = collections.Counter(message["Message-ID"] for message in stack.mailbox.messages)
        assert set(ids.values()) == {1}
        assert sorted(message["To"] for message in stack.mailbox.messages) == [
            "sm1@example.org",
            "tm1@example.org",
        ]
        keys = {f"{ref}/police_protection/1/0" for ref in refs}
        for message in stack.mailbox.messages:
            assert set(message["X-Caseclock-Keys"].split()) == keys
        # None of it was sent before it was due.
        first_sent = select(func.min(Delivery.sent_at)).where(Delivery.status == "sent")
        async with stack.sessions() as session:
            earliest = await session.scalar(first_sent)
        assert earliest is not None
        assert earliest >= due
        # The cases slept through it: the sweep did the work, not a task per case.
        after = {ref: await history_length(stack, workflow_id_for(ref)) for ref in refs}
        assert after == before


async def test_a_stopped_sweep_is_started_again_by_a_plan_due_sooner(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with engine_stack(local_env.client, tmp_path) as stack:
        now = datetime.now(UTC).replace(microsecond=0)
        await open_storm(stack, ["SS-0001"], now + timedelta(seconds=20))
        queue = stack.settings.temporal.task_queue
        sweep = stack.client.get_workflow_handle(sweep_workflow_id(queue))
        await wait_until(lambda: _running(sweep), 10, message="the sweep to start")
        await sweep.terminate(reason="test: an operator stopped the sweep")
        # The next case falls due before the stopped sweep's next look: its plan wakes the
        # sweep, which starts again, and then delivers both cases' alerts when due.
        await open_storm(stack, ["SS-0002"], now + timedelta(seconds=8))
        sent = select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        await wait_until(lambda: _equals(count(stack, sent), 2 * PER_ALERT), 40, message="delivery")


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING
