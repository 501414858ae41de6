"""Start cases and record events through Temporal: the one path the CLI, API and demo share.

Each call checks its input with the same pure core the workflow runs, so bad input gets a
clear error before anything durable happens.
"""

from datetime import date, datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from caseclock.calendar import WorkingCalendar, local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.engine import apply_event, start_case
from caseclock.core.events import CaseEvent, EventRejectedError, Rejection
from caseclock.definition.schema import Definition
from caseclock.search_attributes import DEFINITION_ATTRIBUTE, TEAM_ATTRIBUTE
from workflows.case import CALENDAR_YEARS_AHEAD, CaseWorkflow
from workflows.case_types import (
    Allocation,
    CaseSummary,
    CaseWorkflowInput,
    RecordEventInput,
    RecordEventResult,
    workflow_id_for,
)


def calendar_for(earliest: date, today: date) -> WorkingCalendar:
    """The calendar snapshot a new case carries: from the year before its first event."""
    first_year = min(earliest.year, today.year) - 1
    return build_england_and_wales_calendar(first_year, today.year + CALENDAR_YEARS_AHEAD)


def check_case_start(
    definition: Definition,
    case_ref: str,
    events: list[CaseEvent],
    calendar: WorkingCalendar,
    now: datetime,
) -> None:
    """Run the opening events through the core; raise EventRejectedError if any is invalid."""
    state = start_case(definition, case_ref)
    for event in events:
        state = apply_event(definition, state, event, calendar, now).state


async def open_case(
    client: Client,
    task_queue: str,
    definition: Definition,
    case_ref: str,
    allocation: Allocation,
    events: list[CaseEvent],
    now: datetime,
) -> None:
    """Start a case with its opening events; starting an already open case changes nothing."""
    if not events:
        raise EventRejectedError(
            "start", [Rejection(field="events", reason="a case starts with at least one event")]
        )
    calendar = calendar_for(min(e.effective_date for e in events), local_date(now))
    check_case_start(definition, case_ref, events, calendar, now)
    await client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(
            case_ref=case_ref,
            allocation=allocation,
            definition=definition,
            calendar=calendar,
            initial_events=events,
        ),
        id=workflow_id_for(case_ref),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(DEFINITION_ATTRIBUTE, f"{definition.id}@{definition.version}"),
                SearchAttributePair(TEAM_ATTRIBUTE, allocation.team),
            ]
        ),
    )


async def record_event(client: Client, case_ref: str, event: CaseEvent) -> RecordEventResult:
    """Record an event on an open case; raises EventRejectedError with the core's reasons."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for(case_ref))
    try:
        return await handle.execute_update(CaseWorkflow.record_event, RecordEventInput(event=event))
    except WorkflowUpdateFailedError as error:
        raise _as_rejection(event.type, error) from error


async def case_summary(client: Client, case_ref: str) -> CaseSummary:
    """The case's stages, clocks and explanations, as its workflow holds them."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for(case_ref))
    return await handle.query(CaseWorkflow.summary)


def _as_rejection(event_type: str, error: WorkflowUpdateFailedError) -> Exception:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in {"EventRejected", "CaseClosed"}:
        rejections = [Rejection.model_validate(detail) for detail in cause.details]
        return EventRejectedError(
            event_type, rejections or [Rejection(field=None, reason=cause.message)]
        )
    return error
