"""Apply a planned import: open each case through ``caseclock.cases.open_case``.

A case whose workflow already exists is left exactly as it is, whether it is still open or
has closed since: importing the same files twice changes nothing, and an old list never
reopens a case that Caseclock has since closed.
"""

import asyncio
from datetime import datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from caseclock.cases import open_case
from caseclock.core.events import EventRejectedError
from caseclock.definition.schema import Definition
from caseclock.importer.models import AppliedCase, CaseOutcome, CasePlan, ImportPlan, ImportResult
from caseclock.importer.plan import Progress
from workflows.case_types import workflow_id_for

# Cases opened at once: enough to keep the server busy without flooding it.
DEFAULT_CONCURRENCY = 8


async def apply_import(
    plan: ImportPlan,
    client: Client,
    task_queue: str,
    now: datetime,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> ImportResult:
    """Open every case of the plan that is not already known to Temporal.

    Args:
        plan: The dry run from ``plan_import``; its rejected and skipped cases are not touched.
        client: A Temporal client with Caseclock's data converter (payloads encrypted).
        task_queue: The workers' task queue.
        now: The import instant (aware); opening events must not be after it.
        concurrency: How many cases are opened at once.
        progress: Called with (cases done, cases in all).

    Returns:
        For each case: opened now, already open (unchanged), already closed (not reopened),
        or failed with the reason.

    """
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(case: CasePlan) -> AppliedCase:
        nonlocal done
        async with limit:
            result = await _apply_case(plan.definition, case, client, task_queue, now)
        done += 1
        if progress is not None:
            progress(done, len(plan.cases))
        return result

    results = await asyncio.gather(*(one(case) for case in plan.cases))
    return ImportResult(cases=list(results))


async def _apply_case(
    definition: Definition, case: CasePlan, client: Client, task_queue: str, now: datetime
) -> AppliedCase:
    try:
        status = await _existing_status(client, case.case_ref)
        if status is WorkflowExecutionStatus.RUNNING:
            return AppliedCase(case_ref=case.case_ref, outcome=CaseOutcome.ALREADY_OPEN)
        if status is not None:
            return AppliedCase(
                case_ref=case.case_ref,
                outcome=CaseOutcome.ALREADY_CLOSED,
                reason=f"its workflow is {status.name.lower()}; an import never reopens a case",
            )
        await open_case(
            client,
            task_queue,
            definition,
            case.case_ref,
            case.allocation,
            case.events,
            now,
        )
    except (EventRejectedError, RPCError) as error:
        return AppliedCase(case_ref=case.case_ref, outcome=CaseOutcome.FAILED, reason=str(error))
    return AppliedCase(case_ref=case.case_ref, outcome=CaseOutcome.OPENED)


async def _existing_status(client: Client, case_ref: str) -> WorkflowExecutionStatus | None:
    """The status of the case's latest workflow run, or None if there has never been one."""
    try:
        description = await client.get_workflow_handle(workflow_id_for(case_ref)).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.status
