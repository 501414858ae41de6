"""Deliver alerts in batches, exactly once per (escalation key, recipient, channel).

A batch costs two write transactions, however many alerts it holds:

1. Resolve every alert's roles to people (one directory session for the batch, each
   distinct team, worker, roles and day once).
2. One transaction upserts every escalation and claims every delivery in the ledger
   (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, and failed or lapsed claims taken
   again). Inbox deliveries are only database rows, so their inbox items and their "sent"
   marks commit in the same transaction: nothing can send them twice.
3. Emails go out over one SMTP session, webhooks over the shared HTTP client, only for
   the deliveries this batch claimed. A delivery claimed by a live sender elsewhere is not
   sent; one already sent is counted, not sent again. A person (one staff code, address,
   role and covering-for) with ``DIGEST_MIN_ALERTS`` or more email deliveries claimed in
   the batch gets one digest email listing them, most urgent first, instead of one email
   each.
4. One transaction marks the sent ones sent and the failed ones failed (released for a
   retry, which sends them then). A digest's deliveries are sent or failed together; a
   retry groups what it claims then, which may be a different digest or single emails.

The claim comes before the send and is a lease (see ``caseclock.db.deliveries``): no send
starts after half the lease has run, so a claim never lapses while its sender may still
start sending. An email keeps the ``Message-ID`` derived from (key, address), so a resend
after a crash between send and mark is recognisable; a digest's ``Message-ID`` is derived
from (sorted keys, address) for the same reason.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from pydantic import BaseModel, ConfigDict

from caseclock.calendar import local_date
from caseclock.core.actions import NotifyAction
from caseclock.db import UnknownCaseError
from caseclock.db.deliveries import INBOX, Claim, ClaimState, DeliveryKey
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory, Recipient, ResolveRequest, unknown_roles_error
from caseclock.notify.email import DigestEmail, EmailSender, OutgoingEmail
from caseclock.notify.message import AlertMessage, render_alert, render_digest
from caseclock.notify.webhook import WebhookSender

EMAIL = "email"
WEBHOOK = "webhook"
# Webhook posts in flight at once for one batch.
WEBHOOK_CONCURRENCY = 8
# Email deliveries to one person in one batch from which they get one digest email instead.
DIGEST_MIN_ALERTS = 5


class AlertToDeliver(BaseModel):
    """An alert to deliver, with the case's allocation at the time it fell due."""

    model_config = ConfigDict(frozen=True)

    action: NotifyAction
    team: str
    allocated_worker: str | None


class AlertOutcome(StrEnum):
    """Where one alert stands after a delivery attempt."""

    DELIVERED = "delivered"
    """Every delivery of the alert is sent (now or before)."""
    IN_PROGRESS = "in_progress"
    """Some delivery is claimed by another live sender."""
    FAILED = "failed"
    """Some channel failed (the error says which); retry later."""
    NO_RECIPIENTS = "no_recipients"
    """Nobody in the directory holds the roles; retry later."""


class AlertDeliveryResult(BaseModel):
    """One alert's outcome, and how many of its deliveries were sent now or before."""

    key: str
    outcome: AlertOutcome
    sent: int
    already_sent: int
    failed: int
    error: str | None = None


@dataclass
class _Alert:
    """One distinct alert of a batch, and what happened to it."""

    alert: AlertToDeliver
    error: str | None = None
    recipients: list[Recipient] = field(default_factory=list)
    sent: int = 0
    already_sent: int = 0
    failures: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alert.action.key

    def result(self) -> AlertDeliveryResult:
        outcome, error = AlertOutcome.DELIVERED, None
        if self.error is not None:
            outcome, error = AlertOutcome.FAILED, self.error
        elif not self.recipients:
            roles = ", ".join(self.alert.action.roles)
            outcome = AlertOutcome.NO_RECIPIENTS
            error = f"nobody in the directory holds {roles} for team {self.alert.team}"
        elif self.failures:
            outcome, error = AlertOutcome.FAILED, "; ".join(self.failures + self.busy)
        elif self.busy:
            outcome, error = AlertOutcome.IN_PROGRESS, "; ".join(self.busy)
        return AlertDeliveryResult(
            key=self.key,
            outcome=outcome,
            sent=self.sent,
            already_sent=self.already_sent,
            failed=len(self.failures),
            error=error,
        )


@dataclass(frozen=True)
class _Send:
    """A delivery this batch claimed and must send."""

    alert: _Alert
    recipient: Recipient
    channel: str
    delivery_id: int


class AlertDelivery:
    """Deliver alerts: in-app inbox always, email and webhook where the person has them.

    Args:
        read_model: The read model, with the delivery ledger.
        directory: Who holds which role.
        email: The SMTP sender; email is a channel only when it is enabled.
        webhook: The webhook sender, or None for no webhook channel.
        dashboard_url: Base address of the dashboard, for the acknowledge link.

    """

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
        self._log = structlog.get_logger(__name__)

    async def deliver(self, alerts: Sequence[AlertToDeliver]) -> list[AlertDeliveryResult]:
        """Deliver a batch of alerts, each (key, person, channel) at most once.

        Returns:
            One result per alert, in order (an alert given twice gets the same result
            twice). A directory gap or a channel failure is a result, never an exception.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: If the database fails.

        """
        batch: dict[str, _Alert] = {}
        for alert in alerts:
            batch.setdefault(alert.action.key, _Alert(alert))
        if not batch:
            return []
        await self._resolve(list(batch.values()))
        wanted = {
            DeliveryKey(item.key, recipient.staff_code, channel): item
            for item in batch.values()
            for recipient in item.recipients
            for channel in self._channels(recipient)
        }
        started = time.monotonic()
        recorded = await self._read_model.record_alerts_and_claim(
            [item.alert.action for item in batch.values()], list(wanted)
        )
        for item in batch.values():
            if item.alert.action.case_ref in recorded.unknown_cases:
                item.error = str(UnknownCaseError(item.alert.action.case_ref))
        recipients = {
            (item.key, recipient.staff_code): recipient
            for item in batch.values()
            for recipient in item.recipients
        }
        sends = self._tally(wanted, recorded.claims, recipients)
        # No send starts after half the lease: the claim outlives every send begun under it.
        start_by = started + self._read_model.claim_lease.total_seconds() / 2
        failed = await self._send(sends, start_by)
        sent_ids = [send.delivery_id for send in sends if send.delivery_id not in failed]
        for send in sends:
            if send.delivery_id in failed:
                who = f"{send.channel} to {send.recipient.staff_code}"
                send.alert.failures.append(f"{who}: {failed[send.delivery_id]}")
            else:
                send.alert.sent += 1
        await self._read_model.mark_batch(sent_ids, failed)
        results = {key: item.result() for key, item in batch.items()}
        # A batch of one is the workflow's activity, which logs the alert itself.
        log = self._log.info if len(batch) > 1 else self._log.debug
        log(
            "alerts delivered",
            alerts=len(batch),
            sent=sum(result.sent for result in results.values()),
            already_sent=sum(result.already_sent for result in results.values()),
            not_delivered=sum(r.outcome is not AlertOutcome.DELIVERED for r in results.values()),
        )
        return [results[alert.action.key] for alert in alerts]

    async def _resolve(self, items: list[_Alert]) -> None:
        requests: list[ResolveRequest] = []
        resolvable: list[_Alert] = []
        for item in items:
            action = item.alert.action
            item.error = unknown_roles_error(action.roles)
            if item.error is None:
                resolvable.append(item)
                requests.append(
                    ResolveRequest(
                        item.alert.team,
                        item.alert.allocated_worker,
                        tuple(action.roles),
                        local_date(action.fire_at),
                    )
                )
        found = await self._directory.resolve_many(requests)
        for item, recipients in zip(resolvable, found, strict=True):
            item.recipients = recipients

    def _channels(self, recipient: Recipient) -> list[str]:
        channels = [INBOX]
        if recipient.email and self._email.enabled:
            channels.append(EMAIL)
        if recipient.webhook_url and self._webhook is not None:
            channels.append(WEBHOOK)
        return channels

    @staticmethod
    def _tally(
        wanted: dict[DeliveryKey, _Alert],
        claims: dict[DeliveryKey, Claim],
        recipients: dict[tuple[str, str], Recipient],
    ) -> list[_Send]:
        """Count what the claims found; the deliveries this batch must send."""
        sends: list[_Send] = []
        for want, item in wanted.items():
            claim = claims.get(want)
            if claim is None:  # its case is not in the read model: nothing was claimed
                continue
            if claim.state is ClaimState.SENT_NOW:
                item.sent += 1
            elif claim.state is ClaimState.ALREADY_SENT:
                item.already_sent += 1
            elif claim.state is ClaimState.IN_PROGRESS:
                item.busy.append(
                    f"{want.channel} to {want.staff_code} for {want.escalation_key} "
                    "is claimed elsewhere"
                )
            else:
                assert claim.delivery_id is not None  # noqa: S101 - a claim carries its row
                recipient = recipients[want.escalation_key, want.staff_code]
                sends.append(_Send(item, recipient, want.channel, claim.delivery_id))
        return sends

    async def _send(self, sends: list[_Send], start_by: float) -> dict[int, str]:
        """Send the claimed deliveries; the error of each that failed, by delivery id."""
        if not sends:
            return {}
        digests = _digest_groups(sends)
        in_digest = {send.delivery_id for group in digests for send in group}
        messages: dict[tuple[str, str], AlertMessage] = {}
        failed: dict[int, str] = {}
        # Each email to send, and the deliveries it carries (a digest's, or one).
        emails = self._digests(digests, failed)
        webhooks: list[tuple[_Send, AlertMessage]] = []
        for send in sends:
            if send.delivery_id in in_digest:
                continue
            who = (send.alert.key, send.recipient.staff_code)
            try:
                if who not in messages:
                    messages[who] = self._render(send.alert.alert.action, send.recipient)
            except Exception as exc:  # one alert's problem stays its own
                failed[send.delivery_id] = _describe(exc)
                continue
            if send.channel == EMAIL:
                outgoing = OutgoingEmail(send.recipient.email, messages[who], send.alert.key)
                emails.append((outgoing, [send]))
            else:
                webhooks.append((send, messages[who]))
        email_errors, webhook_errors = await asyncio.gather(
            self._email.send_many([email for email, _ in emails], start_by=start_by),
            self._post_all(webhooks, start_by),
        )
        for (_, carried), error in zip(emails, email_errors, strict=True):
            if error is not None:
                failed.update((send.delivery_id, _describe(error)) for send in carried)
        for (send, _), error in zip(webhooks, webhook_errors, strict=True):
            if error is not None:
                failed[send.delivery_id] = _describe(error)
        return failed

    def _render(self, action: NotifyAction, recipient: Recipient) -> AlertMessage:
        return render_alert(
            action,
            recipient.display_name,
            recipient.role,
            recipient.covering_for,
            self._dashboard_url,
        )

    def _digests(
        self, groups: list[list[_Send]], failed: dict[int, str]
    ) -> list[tuple[OutgoingEmail | DigestEmail, list[_Send]]]:
        """One digest email per group; a digest that cannot be rendered fails its group."""
        emails: list[tuple[OutgoingEmail | DigestEmail, list[_Send]]] = []
        for group in groups:
            recipient = group[0].recipient
            try:
                digest = render_digest(
                    [send.alert.alert.action for send in group],
                    recipient.display_name,
                    recipient.role,
                    recipient.covering_for,
                    self._dashboard_url,
                )
            except Exception as exc:  # the digest's problem is each of its deliveries'
                failed.update((send.delivery_id, _describe(exc)) for send in group)
                continue
            keys = tuple(send.alert.key for send in group)
            emails.append((DigestEmail(recipient.email, digest, keys), group))
        return emails

    async def _post_all(
        self, webhooks: list[tuple[_Send, AlertMessage]], start_by: float
    ) -> list[Exception | None]:
        webhook = self._webhook
        if not webhooks or webhook is None:
            return [None] * len(webhooks)
        limit = asyncio.Semaphore(WEBHOOK_CONCURRENCY)

        async def post(send: _Send, message: AlertMessage) -> Exception | None:
            async with limit:
                url = send.recipient.webhook_url
                if time.monotonic() > start_by or url is None:
                    return TimeoutError(
                        f"webhook post of alert {send.alert.key} not started: the delivery "
                        "claim would run out first; it is retried later"
                    )
                try:
                    await webhook.post(url, message, send.alert.key)
                except Exception as exc:  # this delivery's failure, returned
                    return exc
                return None

        return list(await asyncio.gather(*(post(send, message) for send, message in webhooks)))


def _digest_groups(sends: list[_Send]) -> list[list[_Send]]:
    """The email deliveries that go as digests: one group per person with enough of them.

    A person is grouped by staff code and address, and by the role and covering-for they are
    told under, so that the digest's "you are getting these as ..." is true of every line.
    """
    by_person: dict[tuple[str, str, str, str | None], list[_Send]] = {}
    for send in sends:
        if send.channel == EMAIL:
            recipient = send.recipient
            person = (recipient.staff_code, recipient.email, recipient.role, recipient.covering_for)
            by_person.setdefault(person, []).append(send)
    return [group for group in by_person.values() if len(group) >= DIGEST_MIN_ALERTS]


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
