"""Activities of the alert plan: a case records a step with its plan; the sweep delivers.

``record_step`` writes what one step of a case changed (the case row when it opens, its
events, stages and clocks) and replaces the case's planned alerts, waking the
sweep if the plan falls due before the sweep would next look. ``sweep_due_alerts`` delivers
every planned alert that has fallen due, in batches through the delivery ledger, and says
when to look again. Both are idempotent: upserts, a plan version, and ledger claims.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from pydantic import BaseModel
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from activities.case_activities import CaseOpenedInput, RecordAction
from caseclock.core.actions import NotifyAction
from caseclock.db.alert_plan import AlertPlan, DueAlert, Settlement
from caseclock.db.read_model import CaseOpening, ReadModel
from caseclock.db.step_writer import CallAsync
from caseclock.notify.delivery import AlertDelivery, AlertOutcome, AlertToDeliver

SWEEP_WORKFLOW = "AlertSweepWorkflow"
WAKE_SIGNAL = "wake"
# Alerts per delivery batch: one ledger transaction and one SMTP session each.
SWEEP_BATCH = 500
# An alert that could not be delivered (SMTP down, nobody in post) is tried again this
# much later; the sweep wakes for it like any other due alert.
RETRY_AFTER = timedelta(minutes=1)
# The sweep looks at least this often even if nothing is planned: a safety net only, as a
# plan due sooner always wakes it (and restarts it if it is not running).
SWEEP_MAX_IDLE = timedelta(days=1)


class AlertPlanInput(BaseModel):
    """A case's planned alerts after ``after``; ``version`` orders a case's plans."""

    version: int
    after: datetime
    alerts: list[NotifyAction]


class RecordStepInput(BaseModel):
    """Everything one step of a case changed, written by one activity."""

    case_ref: str
    opened: CaseOpenedInput | None = None
    actions: list[RecordAction] = []
    plan: AlertPlanInput | None = None


class SweepRequest(BaseModel):
    """Deliver what is due at ``now`` (the sweep workflow's time, so tests can skip time)."""

    now: datetime


class SweepResult(BaseModel):
    """What one sweep delivered, what it put back, and when to look again."""

    delivered: int
    retrying: int
    next_wake: datetime


def sweep_workflow_id(task_queue: str) -> str:
    """One sweep per task queue: the workers that serve the cases also deliver their alerts."""
    return f"caseclock/alert-sweep/{task_queue}"


async def wake_sweep(client: Client, task_queue: str) -> None:
    """Wake the sweep, starting it if it is not running (signal-with-start)."""
    await client.start_workflow(
        SWEEP_WORKFLOW,
        id=sweep_workflow_id(task_queue),
        task_queue=task_queue,
        start_signal=WAKE_SIGNAL,
    )


class StepActivities:
    """Record a case's step and its plan in the read model, in one transaction."""

    def __init__(self, read_model: ReadModel, plan: AlertPlan) -> None:
        self._read_model = read_model
        self._plan = plan

    @activity.defn(name="record_step")
    async def record_step(self, step: RecordStepInput) -> None:
        """Write the step's facts in order, then its plan; a stale plan is ignored."""
        opened, plan = step.opened, step.plan
        also: Callable[[Session, CallAsync], None] | None = None
        if plan is not None:
            client, task_queue = activity.client(), activity.info().task_queue

            def replace_plan(session: Session, call_async: CallAsync) -> None:
                def wake(_due: datetime) -> None:
                    call_async(wake_sweep(client, task_queue))

                self._plan.replace_plan_in(
                    session, step.case_ref, plan.version, plan.after, plan.alerts, wake
                )

            also = replace_plan

        await self._read_model.record_step(
            step.case_ref,
            opening=None
            if opened is None
            else CaseOpening(
                opened.definition_id,
                opened.definition_version,
                opened.team,
                opened.allocated_worker,
                opened.opened_on,
            ),
            actions=step.actions,
            also=also,
        )
        structlog.get_logger().debug("recorded", case_ref=step.case_ref, actions=len(step.actions))


class SweepActivities:
    """Deliver planned alerts that have fallen due."""

    def __init__(self, plan: AlertPlan, delivery: AlertDelivery) -> None:
        self._plan = plan
        self._delivery = delivery

    @activity.defn(name="sweep_due_alerts")
    async def sweep_due_alerts(self, request: SweepRequest) -> SweepResult:
        """Deliver every alert due by ``request.now``, batch by batch; say when to look again.

        An alert that cannot be delivered now is put back for ``RETRY_AFTER``, so one bad
        address or empty post never holds up the others.
        """
        log = structlog.get_logger()
        delivered = retrying = 0
        while True:
            began = time.monotonic()
            batch = await self._plan.due(request.now, SWEEP_BATCH)
            if not batch:
                break
            read = time.monotonic()
            settlements = await self._deliver(batch)
            sent = time.monotonic()
            await self._plan.settle(settlements, request.now, RETRY_AFTER)
            done = sum(1 for settled in settlements if settled.delivered)
            delivered += done
            retrying += len(settlements) - done
            activity.heartbeat(delivered)
            log.info(
                "sweep batch",
                alerts=len(batch),
                delivered=done,
                read_ms=round((read - began) * 1000),
                deliver_ms=round((sent - read) * 1000),
                settle_ms=round((time.monotonic() - sent) * 1000),
            )
        next_wake = await self._plan.schedule_next_wake(request.now, SWEEP_MAX_IDLE)
        if delivered or retrying:
            log.info("sweep delivered", delivered=delivered, retrying=retrying)
        return SweepResult(delivered=delivered, retrying=retrying, next_wake=next_wake)

    async def _deliver(self, batch: list[DueAlert]) -> list[Settlement]:
        alerts = [
            AlertToDeliver(action=due.action, team=due.team, allocated_worker=due.allocated_worker)
            for due in batch
        ]
        results = await self._delivery.deliver(alerts)
        return [
            Settlement(
                alert=due,
                delivered=result.outcome is AlertOutcome.DELIVERED,
                error=None
                if result.outcome is AlertOutcome.DELIVERED
                else result.error or result.outcome,
            )
            for due, result in zip(batch, results, strict=True)
        ]
