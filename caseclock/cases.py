"""Start cases and record events through Temporal: the one path the CLI, API and demo share.

Each call checks its input with the same pure core the workflow runs, so bad input gets a
clear error before anything durable happens.
"""

import functools
from datetime import date, datetime

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from caseclock.calendar import WorkingCalendar, local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.engine import apply_event, start_case
from caseclock.core.events import CaseEvent, EventRejectedError, Rejection
from caseclock.core.state import CaseState
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
    return _calendar(first_year, today.year + CALENDAR_YEARS_AHEAD)


@functools.lru_cache(maxsize=64)
def _calendar(first_year: int, last_year: int) -> WorkingCalendar:
    # Built once per span and shared: a calendar is frozen, and building one takes a few
    # milliseconds that every case start would otherwise pay.
    return build_england_and_wales_calendar(first_year, last_year)


def check_case_start(
    definition: Definition,
    case_ref: str,
    events: list[CaseEvent],
    calendar: WorkingCalendar,
    now: datetime,
    previous: CaseState | None = None,
) -> None:
    """Run the opening events through the core; raise EventRejectedError if any is invalid.

    ``previous`` is the final state of the case's last episode, when it is being reopened.
    """
    state = previous or start_case(definition, case_ref)
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
    """Start a case with its opening events; starting an already open case changes nothing.

    A case that closed earlier is reopened (a re-referral): its new run continues from the
    last episode's final state, so occurrence numbers, event ids and the read model's
    history carry on instead of starting again at 1 and overwriting the earlier episode.
    A new case takes one call to Temporal; only a closed one needs its last state first.
    """
    if not events:
        raise EventRejectedError(
            "start", [Rejection(field="events", reason="a case starts with at least one event")]
        )
    calendar = calendar_for(min(e.effective_date for e in events), local_date(now))
    check_case_start(definition, case_ref, events, calendar, now)
    try:
        await _start(client, task_queue, definition, case_ref, allocation, events, calendar, None)
        return
    except WorkflowAlreadyStartedError:
        pass  # it ran before and closed: reopen it from its final state
    previous = await _closed_episode(client, case_ref)
    check_case_start(definition, case_ref, events, calendar, now, previous)
    await _start(client, task_queue, definition, case_ref, allocation, events, calendar, previous)


async def _start(
    client: Client,
    task_queue: str,
    definition: Definition,
    case_ref: str,
    allocation: Allocation,
    events: list[CaseEvent],
    calendar: WorkingCalendar,
    previous: CaseState | None,
) -> None:
    """Start the case's workflow; without ``previous``, refuse an id that ran and closed."""
    await client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(
            case_ref=case_ref,
            allocation=allocation,
            definition=definition,
            calendar=calendar,
            state=previous,
            initial_events=events,
        ),
        id=workflow_id_for(case_ref),
        task_queue=task_queue,
        # An open case is left as it is; a closed one is reopened only with its state.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE
        if previous is not None
        else WorkflowIDReusePolicy.REJECT_DUPLICATE,
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


async def _closed_episode(client: Client, case_ref: str) -> CaseState | None:
    """The final state of the case's last run if it closed; None if new or still open."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for(case_ref))
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    status = description.status
    if status is WorkflowExecutionStatus.RUNNING:
        return None
    if status is not WorkflowExecutionStatus.COMPLETED:
        name = status.name if status is not None else "unknown"
        msg = (
            f"case {case_ref}'s workflow ended as {name}, not by closing; an operator must "
            "look at it (temporal workflow describe) before the case can be reopened"
        )
        raise CaseNotReopenableError(msg)
    result = await handle.result()
    return result.state


class CaseNotReopenableError(RuntimeError):
    """A case's last run failed or was terminated; reopening it would lose its history."""


def _as_rejection(event_type: str, error: WorkflowUpdateFailedError) -> Exception:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in {"EventRejected", "CaseClosed"}:
        rejections = [Rejection.model_validate(detail) for detail in cause.details]
        return EventRejectedError(
            event_type, rejections or [Rejection(field=None, reason=cause.message)]
        )
    return error
