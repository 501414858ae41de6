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

from caseclock.calendar import local_date
from caseclock.core.actions import (
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
    RecordStageAction,
)
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory, Recipient
from caseclock.notify.email import EmailSender
from caseclock.notify.message import render_alert
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


class DeliveryInProgressError(Exception):
    """Another attempt holds a live claim on a delivery; retry once its lease has run out."""


class NotifyActivities:
    """Deliver alerts: in-app inbox always, email and webhook where the person has them."""

    def __init__(
        self,
        read_model: ReadModel,
        directory: Directory,
        email: EmailSender,
        webhook: WebhookSender | None,
        dashboard_url: str,
    ) -> None:
        self._read_model = read_model
        self._directory = directory
        self._email = email
        self._webhook = webhook
        self._dashboard_url = dashboard_url

    @activity.defn(name="notify_escalation")
    async def notify_escalation(self, request: NotifyEscalationInput) -> NotifyEscalationResult:
        """Record the escalation, resolve its roles to people, and deliver to each once."""
        action = request.action
        log = structlog.get_logger().bind(key=action.key, level=action.level)
        await self._read_model.record_escalation(action)
        recipients = await self._directory.resolve(
            request.team, request.allocated_worker, action.roles, local_date(action.fire_at)
        )
        if not recipients:
            # Retried, not dropped: the directory can be fixed while the alert waits.
            msg = f"nobody in the directory holds {', '.join(action.roles)} for team {request.team}"
            raise ApplicationError(msg, type="NoRecipients")
        result = NotifyEscalationResult(sent=0, already_sent=0, failed=0)
        errors: list[str] = []
        for recipient in recipients:
            for channel in self._channels(recipient):
                outcome = await self._deliver(action, recipient, channel)
                if outcome is None:
                    result.already_sent += 1
                elif outcome:
                    result.failed += 1
                    errors.append(f"{channel} to {recipient.staff_code}: {outcome}")
                else:
                    result.sent += 1
        log.info("alert delivered", sent=result.sent, already_sent=result.already_sent)
        if errors:
            raise ApplicationError("some deliveries failed: " + "; ".join(errors), type="Delivery")
        return result

    def _channels(self, recipient: Recipient) -> list[str]:
        channels = ["inbox"]
        if recipient.email and self._email.enabled:
            channels.append("email")
        if recipient.webhook_url and self._webhook is not None:
            channels.append("webhook")
        return channels

    async def _deliver(
        self, action: NotifyAction, recipient: Recipient, channel: str
    ) -> str | None:
        """Deliver on one channel: None if already sent, "" if sent now, else the error."""
        key, staff = action.key, recipient.staff_code
        if not await self._read_model.claim_delivery(key, staff, channel):
            if await self._read_model.delivery_sent(key, staff, channel):
                return None
            raise DeliveryInProgressError(f"{channel} to {staff} for {key} is claimed elsewhere")
        message = render_alert(
            action,
            recipient.display_name,
            recipient.role,
            recipient.covering_for,
            self._dashboard_url,
        )
        try:
            if channel == "inbox":
                await self._read_model.add_inbox_item(staff, key)
            elif channel == "email" and recipient.email:
                await self._email.send(recipient.email, message, key)
            elif channel == "webhook" and recipient.webhook_url and self._webhook is not None:
                await self._webhook.post(recipient.webhook_url, message, key)
        except Exception as error:
            await self._read_model.mark_failed(key, staff, channel, str(error))
            return str(error) or type(error).__name__
        await self._read_model.mark_delivered(key, staff, channel)
        return ""
