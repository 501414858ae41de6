"""Activities of the case workflow: write the read model, and tell people about clocks.

Each activity is idempotent: read-model writes are upserts, and each delivery is claimed in
a ledger keyed by (escalation key, recipient, channel) before it is sent, so a retried
activity or a replayed workflow never alerts anyone twice for the same rung.
"""

from datetime import date
from typing import Annotated

import structlog
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from caseclock.core.actions import (
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
    RecordStageAction,
)
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory
from caseclock.notify.delivery import AlertDelivery, AlertOutcome, AlertToDeliver
from caseclock.notify.email import EmailSender
from caseclock.notify.webhook import WebhookSender

RecordAction = Annotated[
    RecordClockAction | RecordStageAction | RecordEventAction, Field(discriminator="kind")
]


class CaseOpenedInput(BaseModel):
    """A case workflow has started."""

    case_ref: str
    definition_id: str
    definition_version: str
    team: str
    allocated_worker: str | None
    opened_on: date


class CaseClosedInput(BaseModel):
    """A case workflow has finished: its tracks are closed and no clock runs."""

    case_ref: str
    closed_on: date


class AllocationInput(BaseModel):
    """The case moved to a team or worker."""

    case_ref: str
    team: str
    allocated_worker: str | None


class RecordActionsInput(BaseModel):
    """Facts from one step of the core, written together."""

    case_ref: str
    actions: list[RecordAction]


class ReadModelActivities:
    """Read-model writes, as upserts; safe to retry and to replay."""

    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model

    @activity.defn(name="record_case_opened")
    async def record_case_opened(self, opened: CaseOpenedInput) -> None:
        """Create or refresh the case row."""
        await self._read_model.upsert_case(
            opened.case_ref,
            opened.definition_id,
            opened.definition_version,
            opened.team,
            opened.allocated_worker,
            opened.opened_on,
        )

    @activity.defn(name="record_case_closed")
    async def record_case_closed(self, closed: CaseClosedInput) -> None:
        """Mark the case closed."""
        await self._read_model.close_case(closed.case_ref, closed.closed_on)

    @activity.defn(name="record_allocation")
    async def record_allocation(self, allocation: AllocationInput) -> None:
        """Move the case to a team or worker."""
        await self._read_model.set_allocation(
            allocation.case_ref, allocation.team, allocation.allocated_worker
        )

    @activity.defn(name="record_actions")
    async def record_actions(self, batch: RecordActionsInput) -> None:
        """Write events, stage moves and clock occurrences in order."""
        for action in batch.actions:
            match action:
                case RecordEventAction():
                    await self._read_model.record_event(action)
                case RecordStageAction():
                    await self._read_model.record_stage(action)
                case RecordClockAction():
                    await self._read_model.record_clock(action)
        structlog.get_logger().debug(
            "recorded", case_ref=batch.case_ref, actions=len(batch.actions)
        )


class NotifyEscalationInput(BaseModel):
    """An alert to deliver, with the case's allocation at the time it fell due."""

    action: NotifyAction
    team: str
    allocated_worker: str | None


class NotifyEscalationResult(BaseModel):
    """How many deliveries this attempt made, and how many were already made before."""

    sent: int
    already_sent: int
    failed: int


class NotifyAlertsInput(BaseModel):
    """Alerts to deliver together, in one batch."""

    alerts: list[NotifyEscalationInput]


class NotifyAlertsResult(BaseModel):
    """What a batch did: alerts delivered, and deliveries sent now or before."""

    alerts: int
    delivered: int
    sent: int
    already_sent: int


class DeliveryInProgressError(Exception):
    """Another attempt holds a live claim on a delivery; retry once its lease has run out."""


class NotifyActivities:
    """Deliver alerts: in-app inbox always, email and webhook where the person has them.

    Both activities go through :attr:`delivery` (an :class:`AlertDelivery`), which other
    callers may share.
    """

    def __init__(
        self,
        read_model: ReadModel,
        directory: Directory,
        email: EmailSender,
        webhook: WebhookSender | None,
        dashboard_url: str,
    ) -> None:
        self.delivery = AlertDelivery(read_model, directory, email, webhook, dashboard_url)

    @activity.defn(name="notify_escalation")
    async def notify_escalation(self, request: NotifyEscalationInput) -> NotifyEscalationResult:
        """Record the escalation, resolve its roles to people, and deliver to each once.

        Raises:
            ApplicationError: ``NoRecipients`` if nobody holds the roles, ``Delivery`` if a
                channel failed; both are retried.
            DeliveryInProgressError: Another sender holds a live claim on a delivery.

        """
        [result] = await self.delivery.deliver([_to_deliver(request)])
        log = structlog.get_logger().bind(key=result.key, level=request.action.level)
        match result.outcome:
            case AlertOutcome.NO_RECIPIENTS:
                # Retried, not dropped: the directory can be fixed while the alert waits.
                raise ApplicationError(result.error or "no recipients", type="NoRecipients")
            case AlertOutcome.FAILED:
                msg = f"some deliveries failed: {result.error}"
                raise ApplicationError(msg, type="Delivery")
            case AlertOutcome.IN_PROGRESS:
                raise DeliveryInProgressError(result.error)
        log.info("alert delivered", sent=result.sent, already_sent=result.already_sent)
        return NotifyEscalationResult(
            sent=result.sent, already_sent=result.already_sent, failed=result.failed
        )

    @activity.defn(name="notify_alerts")
    async def notify_alerts(self, request: NotifyAlertsInput) -> NotifyAlertsResult:
        """Deliver many alerts in one batch; fail (for a retry) if any is not delivered.

        Every alert that can be delivered is, before the failure is raised; the retry then
        finds those already sent and sends only what is left.

        Raises:
            ApplicationError: ``Delivery``, naming each alert not delivered and why.

        """
        results = await self.delivery.deliver([_to_deliver(alert) for alert in request.alerts])
        summary = NotifyAlertsResult(
            alerts=len(results),
            delivered=sum(result.outcome is AlertOutcome.DELIVERED for result in results),
            sent=sum(result.sent for result in results),
            already_sent=sum(result.already_sent for result in results),
        )
        waiting = [result for result in results if result.outcome is not AlertOutcome.DELIVERED]
        if waiting:
            shown = "; ".join(f"{r.key} {r.outcome}: {r.error}" for r in waiting[:_SHOWN])
            more = f" (and {len(waiting) - _SHOWN} more)" if len(waiting) > _SHOWN else ""
            msg = f"{len(waiting)} of {len(results)} alerts not delivered yet: {shown}{more}"
            raise ApplicationError(msg, summary.model_dump(), type="Delivery")
        return summary


# Alerts named in a batch's failure message; the rest are counted.
_SHOWN = 5


def _to_deliver(request: NotifyEscalationInput) -> AlertToDeliver:
    return AlertToDeliver(
        action=request.action, team=request.team, allocated_worker=request.allocated_worker
    )
