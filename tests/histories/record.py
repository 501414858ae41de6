"""Record histories of the released CaseWorkflow for the replay tests.

Run once per released workflow version, from the repository root:

    .venv/bin/python -m tests.histories.record 2026.1

It starts a dev server and a real worker, drives cases through their main shapes (a late
start escalating at once, events accepted and rejected, continue-as-new with a calendar
refresh, a case closing, an alert delivered by the sweep and then caught up), and writes
every run's history (and the sweep's) to ``tests/histories/<version>/``.
Payloads are encrypted with the development key, which the replay test uses.
"""

import asyncio
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.sweep_activities import sweep_workflow_id
from caseclock.calendar import LONDON, local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.events import CaseEvent
from caseclock.definition.loader import load_definition
from caseclock.search_attributes import SEARCH_ATTRIBUTES
from tests.engine_stack import engine_stack
from workflows.case import CaseWorkflow
from workflows.case_types import Allocation, CaseWorkflowInput, RecordEventInput, workflow_id_for

HERE = Path(__file__).parent
DEFINITION = load_definition(HERE.parents[1] / "definitions" / "child-protection.yaml")
ALLOCATION = Allocation(team="T1", worker="SW-1")


def _event(event_id: str, kind: str, on: object, outcome: str | None = None) -> CaseEvent:
    return CaseEvent.model_validate(
        {
            "event_id": event_id,
            "type": kind,
            "effective_date": on,
            "recorded_at": datetime.now(UTC),
            "recorded_by": "SW-1",
            "outcome": outcome,
        }
    )


async def _drive(client: Client, task_queue: str) -> list[str]:
    today = local_date(datetime.now(UTC))
    calendar = build_england_and_wales_calendar(2020, today.year + 2)
    start = calendar.add_working_days(today, -120)
    opening = [
        _event("r1", "referral_received", start),
        _event("r2", "referral_decision", start, "strategy_discussion"),
        _event("r3", "strategy_discussion_held", start, "s47"),
        _event("r4", "icpc_held", calendar.add_working_days(start, 12), "cp_plan"),
    ]
    await client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(
            case_ref="REC-0001",
            allocation=ALLOCATION,
            definition=DEFINITION,
            calendar=calendar,
            initial_events=opening,
            history_limit=120,
        ),
        id=workflow_id_for("REC-0001"),
        task_queue=task_queue,
    )
    # Updates go to the workflow id, not the first run: the case continues as new.
    handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for("REC-0001"))
    day = calendar.add_working_days(start, 12)
    for number in range(1, 11):
        day = calendar.add_working_days(day, 10)
        update = RecordEventInput(event=_event(f"v{number}", "cp_visit", day))
        await handle.execute_update(CaseWorkflow.record_event, update)
    try:
        bad = RecordEventInput(event=_event("x1", "referral_decision", day, "assessment"))
        await handle.execute_update(CaseWorkflow.record_event, bad)
    except WorkflowUpdateFailedError:
        pass  # rejected by the validator, as intended
    closing = await client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(
            case_ref="REC-0002",
            allocation=ALLOCATION,
            definition=DEFINITION,
            calendar=calendar,
            initial_events=[_event("r1", "referral_received", today - timedelta(days=1))],
        ),
        id=workflow_id_for("REC-0002"),
        task_queue=task_queue,
    )
    await closing.execute_update(
        CaseWorkflow.record_event,
        RecordEventInput(event=_event("r2", "referral_decision", today, "no_further_action")),
    )
    await closing.result()
    await _police_protection_swept_then_ended(client, task_queue)
    return ["REC-0001", "REC-0002", "REC-0003"]


async def _police_protection_swept_then_ended(client: Client, task_queue: str) -> None:
    """A rung delivered by the sweep, then an event: the case catches up and replans."""
    now = datetime.now(UTC)
    runs_out = now + timedelta(seconds=5)
    started = (runs_out - timedelta(hours=72)).astimezone(LONDON)
    protection = CaseEvent(
        event_id="pp1",
        type="police_protection_started",
        effective_date=started.date(),
        effective_at=started,
        recorded_at=now,
        recorded_by="SW-1",
    )
    handle = await client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(
            case_ref="REC-0003",
            allocation=ALLOCATION,
            definition=DEFINITION,
            calendar=build_england_and_wales_calendar(2020, now.year + 2),
            initial_events=[protection],
        ),
        id=workflow_id_for("REC-0003"),
        task_queue=task_queue,
    )
    await asyncio.sleep(10)  # the sweep delivers the overdue rung at runs_out
    at = datetime.now(UTC).astimezone(LONDON)
    ended = CaseEvent(
        event_id="pp2",
        type="police_protection_ended",
        effective_date=at.date(),
        effective_at=at,
        recorded_at=at,
        recorded_by="SW-1",
    )
    await handle.execute_update(CaseWorkflow.record_event, RecordEventInput(event=ended))


async def main(version: str) -> None:
    """Record the histories into tests/histories/<version>/."""
    folder = HERE / version
    folder.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with engine_stack(env.client, Path(tmp)) as stack:
                queue = stack.settings.temporal.task_queue
                refs = await _drive(stack.client, queue)
                await asyncio.sleep(2)
                ids = [workflow_id_for(ref) for ref in refs] + [sweep_workflow_id(queue)]
                for workflow_id, ref in zip(ids, [*refs, "SWEEP"], strict=True):
                    async for execution in stack.client.list_workflows(
                        f"WorkflowId = '{workflow_id}'"
                    ):
                        handle = stack.client.get_workflow_handle(
                            execution.id, run_id=execution.run_id
                        )
                        history = await handle.fetch_history()
                        name = f"{ref}-{execution.run_id}.json"
                        (folder / name).write_text(history.to_json())
                        print(f"wrote {folder / name}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
