"""Batched alert delivery (AlertDelivery) on real databases, a real SMTP server and webhooks.

Every test runs on SQLite and on PostgreSQL (``tests/db_fixtures.py``), with a real
aiosmtpd server on loopback and, for webhooks, a real HTTP receiver (uvicorn). Each test
makes its own team, people and cases, since the module shares one database.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.deadline import Deadline
from caseclock.db.engine import insert_for
from caseclock.db.models import Case, Delivery, Escalation, InboxItem
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory, DirectorySeed, load_directory
from caseclock.notify.delivery import (
    DIGEST_MIN_ALERTS,
    AlertDelivery,
    AlertOutcome,
    AlertToDeliver,
)
from caseclock.notify.email import EmailSender, digest_message_id, message_id
from caseclock.notify.webhook import IDEMPOTENCY_HEADER, WebhookSender
from caseclock.settings import SmtpSettings, WebhookSettings
from caseclock.units import Counting, Unit
from tests.db_fixtures import Database, database, unique
from tests.test_notify_email import Mailbox, free_port, mailbox
from tests.test_notify_webhook import Receiver, receiver_app

__all__ = ["database", "mailbox"]  # fixtures

SENDER = "caseclock@alerts.example.gov.uk"
DOMAIN = "alerts.example.gov.uk"
FIRE_AT = datetime(2026, 3, 25, 9, tzinfo=UTC)
ROLES = ("team_manager", "service_manager")


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        receiver_app(receiver),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.01)
    yield receiver
    server.should_exit = True
    await serving


@dataclass(frozen=True)
class World:
    """A team with a manager and a service manager (both with email), and its cases."""

    team: str
    manager: str
    service_manager: str
    read_model: ReadModel
    directory: Directory

    def email_of(self, code: str) -> str:
        return f"{code.lower()}@council.example.gov.uk"


async def make_world(database: Database, webhook_url: str | None = None) -> World:
    """Load a small directory of fresh codes; the service manager may have a webhook."""
    team, service = unique("T"), unique("S")
    manager, service_manager = unique("TM"), unique("SM")
    seed = DirectorySeed.model_validate(
        {
            "services": [{"code": service, "name": "Service", "service_manager": service_manager}],
            "teams": [{"code": team, "name": "Team", "service": service, "manager": manager}],
            "staff": [
                {
                    "code": manager,
                    "display_name": "Tam Manager",
                    "email": f"{manager.lower()}@council.example.gov.uk",
                    "role": "team_manager",
                    "team": team,
                },
                {
                    "code": service_manager,
                    "display_name": "Sam Service",
                    "email": f"{service_manager.lower()}@council.example.gov.uk",
                    "role": "service_manager",
                    "webhook_url": webhook_url,
                },
            ],
        }
    )
    await load_directory(database.sessions, seed)
    return World(
        team, manager, service_manager, ReadModel(database.sessions), Directory(database.sessions)
    )


async def open_cases(database: Database, team: str, count: int) -> list[str]:
    """``count`` new cases of ``team`` in the read model, in one statement."""
    prefix = unique("C")
    refs = [f"{prefix}-{number:05d}" for number in range(count)]
    now = datetime.now(UTC)
    rows = [
        {
            "case_ref": ref,
            "definition_id": "child_protection",
            "definition_version": "2026.1",
            "team_code": team,
            "allocated_worker_code": None,
            "opened_on": date(2026, 3, 2),
            "closed_on": None,
            "current_stages": {},
            "updated_at": now,
        }
        for ref in refs
    ]
    async with database.sessions.begin() as session:
        await session.execute(insert_for(session, Case), rows)
    return refs


def notify(case_ref: str, roles: Sequence[str] = ROLES) -> NotifyAction:
    due = date(2026, 3, 23)
    return NotifyAction(
        key=f"{case_ref}/icpc/1/2",
        case_ref=case_ref,
        clock_id="icpc",
        clock_title="Initial child protection conference",
        occurrence=1,
        level=2,
        level_name="team manager",
        covers_levels=(2,),
        roles=tuple(roles),
        state=AlertState.OVERDUE,
        fire_at=FIRE_AT,
        deadline=Deadline(
            rule_id="icpc_within_15_wd",
            rule_title="Initial child protection conference",
            definition_id="child_protection",
            definition_version="2026.1",
            start_event_type="strategy_discussion",
            start_event_id="ev-1",
            start_date=date(2026, 3, 2),
            amount=15,
            unit=Unit.WORKING_DAYS,
            counting=Counting.DAY_AFTER_IS_DAY_1,
            calendar_id="england-and-wales-2026.1",
            due_date=due,
            due_at=datetime(2026, 3, 23, 23, 59, 59, tzinfo=UTC),
        ),
        what_to_do="Hold the conference and record its date.",
    )


def alerts_for(world: World, refs: Sequence[str]) -> list[AlertToDeliver]:
    return [
        AlertToDeliver(action=notify(ref), team=world.team, allocated_worker=None) for ref in refs
    ]


def smtp(port: int) -> EmailSender:
    return EmailSender(SmtpSettings(host="127.0.0.1", port=port, sender=SENDER, timeout_seconds=5))


def engine(world: World, email: EmailSender, webhook: WebhookSender | None = None) -> AlertDelivery:
    return AlertDelivery(
        world.read_model, world.directory, email, webhook, "https://caseclock.example.gov.uk"
    )


def received(mailbox: Mailbox) -> Counter[tuple[str, str]]:
    """(Message-ID, recipient) of every email the server accepted, counted."""
    seen: Counter[tuple[str, str]] = Counter()
    for envelope in mailbox.envelopes:
        mail = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        for to in envelope.rcpt_tos:
            seen[str(mail["Message-ID"]), to] += 1
    return seen


def expected_emails(world: World, refs: Sequence[str]) -> Counter[tuple[str, str]]:
    """One email per alert and person; one digest per person from ``DIGEST_MIN_ALERTS`` on."""
    addresses = [world.email_of(code) for code in (world.manager, world.service_manager)]
    keys = [notify(ref).key for ref in refs]
    if len(keys) >= DIGEST_MIN_ALERTS:
        return Counter({(digest_message_id(keys, to, DOMAIN), to): 1 for to in addresses})
    return Counter({(message_id(key, to, DOMAIN), to): 1 for key in keys for to in addresses})


async def ledger(world: World, refs: Sequence[str]) -> Counter[tuple[str, str, int]]:
    """(channel, status, attempts) of every delivery of these cases' alerts, counted."""
    rows = await world.read_model.delivery_rows([notify(ref).key for ref in refs])
    return Counter((key.channel, status, attempts) for key, (status, attempts) in rows.items())


async def test_a_batch_delivers_every_delivery_once_and_a_redelivery_sends_nothing(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 30)
    delivery = engine(world, smtp(port))

    first = await delivery.deliver(alerts_for(world, refs))
    again = await delivery.deliver(alerts_for(world, refs))

    assert [r.key for r in first] == [notify(ref).key for ref in refs]
    assert {(r.outcome, r.sent, r.already_sent, r.failed, r.error) for r in first} == {
        (AlertOutcome.DELIVERED, 4, 0, 0, None)
    }
    assert {(r.outcome, r.sent, r.already_sent, r.failed) for r in again} == {
        (AlertOutcome.DELIVERED, 0, 4, 0)
    }
    assert received(handler) == expected_emails(world, refs)
    assert await ledger(world, refs) == {("inbox", "sent", 1): 60, ("email", "sent", 1): 60}
    inbox = await world.read_model.inbox(world.manager)
    assert sorted(item.escalation.key for item in inbox) == sorted(notify(r).key for r in refs)
    escalations = await world.read_model.list_escalations(team=world.team)
    assert len(escalations) == len(refs)


async def test_emails_carry_the_alert_and_its_stable_message_id(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)

    await engine(world, smtp(port)).deliver(alerts_for(world, [ref]))

    by_recipient = {
        envelope.rcpt_tos[0]: message_from_bytes(
            envelope.original_content or b"", policy=policy.default
        )
        for envelope in handler.envelopes
    }
    mail = by_recipient[world.email_of(world.service_manager)]
    assert mail["Message-ID"] == message_id(
        notify(ref).key, world.email_of(world.service_manager), DOMAIN
    )
    assert mail["X-Caseclock-Key"] == notify(ref).key
    assert mail["Subject"] == (
        f"Overdue: Initial child protection conference for case {ref} (level 2)"
    )
    text = mail.get_body(preferencelist=("plain",))
    assert isinstance(text, EmailMessage)
    body = text.get_content()
    assert "Dear Sam Service," in body
    assert f"/escalations/{ref}/icpc/1/2" in body


async def test_two_concurrent_deliveries_of_one_batch_never_send_twice(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 40)
    batch = alerts_for(world, refs)

    one, two = await asyncio.gather(
        engine(world, smtp(port)).deliver(batch), engine(world, smtp(port)).deliver(batch)
    )

    for first, second in zip(one, two, strict=True):
        assert {first.outcome, second.outcome} <= {
            AlertOutcome.DELIVERED,
            AlertOutcome.IN_PROGRESS,
        }
        assert first.sent + second.sent == 4
        assert first.failed == second.failed == 0
    assert received(handler) == expected_emails(world, refs)
    after = await engine(world, smtp(port)).deliver(batch)
    assert {(r.outcome, r.already_sent) for r in after} == {(AlertOutcome.DELIVERED, 4)}
    assert received(handler) == expected_emails(world, refs)


async def test_smtp_down_fails_the_email_then_a_retry_sends_each_email_once(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 5)
    batch = alerts_for(world, refs)

    down = await engine(world, smtp(free_port())).deliver(batch)

    assert {(r.outcome, r.sent, r.failed) for r in down} == {(AlertOutcome.FAILED, 2, 2)}
    assert all(f"email to {world.manager}: SMTP delivery" in (r.error or "") for r in down)
    assert await ledger(world, refs) == {("inbox", "sent", 1): 10, ("email", "failed", 1): 10}

    up = await engine(world, smtp(port)).deliver(batch)

    assert {(r.outcome, r.sent, r.already_sent) for r in up} == {(AlertOutcome.DELIVERED, 2, 2)}
    assert received(handler) == expected_emails(world, refs)
    assert await ledger(world, refs) == {("inbox", "sent", 1): 10, ("email", "sent", 2): 10}


async def test_a_refused_email_fails_only_its_alert(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 3)
    handler.refuse_with = "451 4.3.0 Try again later"

    refused = await engine(world, smtp(port)).deliver(alerts_for(world, refs))

    assert {r.outcome for r in refused} == {AlertOutcome.FAILED}
    assert all("451" in (r.error or "") for r in refused)
    handler.refuse_with = None
    retried = await engine(world, smtp(port)).deliver(alerts_for(world, refs))
    assert {r.outcome for r in retried} == {AlertOutcome.DELIVERED}
    assert received(handler) == expected_emails(world, refs)


async def test_a_directory_gap_holds_back_only_its_alert(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 3)
    batch = alerts_for(world, refs)
    nowhere = unique("NOWHERE")
    gap = AlertToDeliver(
        action=notify(refs[1], ("team_manager",)), team=nowhere, allocated_worker=None
    )
    batch[1] = gap

    results = await engine(world, smtp(port)).deliver(batch)

    assert [r.outcome for r in results] == [
        AlertOutcome.DELIVERED,
        AlertOutcome.NO_RECIPIENTS,
        AlertOutcome.DELIVERED,
    ]
    assert results[1].error == f"nobody in the directory holds team_manager for team {nowhere}"
    assert (results[1].sent, results[1].already_sent, results[1].failed) == (0, 0, 0)
    # The escalation is recorded all the same, for the dashboard and the retry.
    keys = {e.key for e in await world.read_model.list_escalations(team=world.team)}
    assert notify(refs[1]).key in keys
    assert received(handler) == expected_emails(world, [refs[0], refs[2]])


async def test_an_unknown_case_or_role_fails_only_its_alert(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    _, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, 3)
    ghost = unique("GHOST")
    batch = [
        *alerts_for(world, refs[:2]),
        AlertToDeliver(action=notify(ghost), team=world.team, allocated_worker=None),
        AlertToDeliver(
            action=notify(refs[2], ("caretaker",)), team=world.team, allocated_worker=None
        ),
    ]

    results = await engine(world, smtp(port)).deliver(batch)

    assert [r.outcome for r in results] == [
        AlertOutcome.DELIVERED,
        AlertOutcome.DELIVERED,
        AlertOutcome.FAILED,
        AlertOutcome.FAILED,
    ]
    assert f"case {ghost!r} is not in the read model" in (results[2].error or "")
    assert "unknown role(s) 'caretaker'" in (results[3].error or "")


async def test_an_alert_given_twice_in_a_batch_is_delivered_once(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)
    [alert] = alerts_for(world, [ref])

    results = await engine(world, smtp(port)).deliver([alert, alert])

    assert results[0] == results[1]
    assert (results[0].outcome, results[0].sent) == (AlertOutcome.DELIVERED, 4)
    assert received(handler) == expected_emails(world, [ref])


async def test_a_live_claim_elsewhere_is_not_sent_and_a_lapsed_one_is(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    [ref] = await open_cases(database, world.team, 1)
    action = notify(ref)
    await world.read_model.record_escalation(action)
    # Another sender claimed the manager's email, then died before sending it.
    assert await world.read_model.claim_delivery(action.key, world.manager, "email")

    busy = await engine(world, smtp(port)).deliver(alerts_for(world, [ref]))

    assert busy[0].outcome is AlertOutcome.IN_PROGRESS
    assert busy[0].error == f"email to {world.manager} for {action.key} is claimed elsewhere"
    assert (busy[0].sent, busy[0].failed) == (3, 0)
    later = datetime.now(UTC) + timedelta(hours=1)
    after_lease = ReadModel(database.sessions, now=lambda: later)
    lapsed = await AlertDelivery(
        after_lease, world.directory, smtp(port), None, "https://x.example"
    ).deliver(alerts_for(world, [ref]))
    assert (lapsed[0].outcome, lapsed[0].sent, lapsed[0].already_sent) == (
        AlertOutcome.DELIVERED,
        1,
        3,
    )
    assert received(handler) == expected_emails(world, [ref])


async def test_webhooks_are_posted_once_each(
    database: Database, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    handler, port = mailbox
    hook = unique("hook")
    world = await make_world(database, webhook_url=f"{receiver.base_url}/ok/{hook}")
    refs = await open_cases(database, world.team, 10)
    async with httpx.AsyncClient() as client:
        webhook = WebhookSender(client, WebhookSettings(timeout_seconds=5))
        first = await engine(world, smtp(port), webhook).deliver(alerts_for(world, refs))
        again = await engine(world, smtp(port), webhook).deliver(alerts_for(world, refs))

    assert {(r.outcome, r.sent) for r in first} == {(AlertOutcome.DELIVERED, 5)}
    assert {(r.outcome, r.already_sent) for r in again} == {(AlertOutcome.DELIVERED, 5)}
    posts = [r for r in receiver.requests if r.path == f"/ok/{hook}"]
    assert sorted(r.headers[IDEMPOTENCY_HEADER.lower()] for r in posts) == sorted(
        notify(ref).key for ref in refs
    )
    assert {r.body["caseclock"]["case_ref"] for r in posts} == set(refs)
    assert received(handler) == expected_emails(world, refs)


async def test_a_failing_webhook_fails_its_alert_without_leaking_the_address(
    database: Database, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    _, port = mailbox
    secret = unique("secret")
    world = await make_world(database, webhook_url=f"{receiver.base_url}/broken/{secret}")
    [ref] = await open_cases(database, world.team, 1)
    async with httpx.AsyncClient() as client:
        webhook = WebhookSender(client, WebhookSettings(timeout_seconds=5))
        [result] = await engine(world, smtp(port), webhook).deliver(alerts_for(world, [ref]))

    assert (result.outcome, result.sent, result.failed) == (AlertOutcome.FAILED, 4, 1)
    assert f"webhook to {world.service_manager}: webhook at 127.0.0.1 answered 500" in (
        result.error or ""
    )
    assert secret not in (result.error or "")


async def test_a_batch_larger_than_the_variable_limit(database: Database) -> None:
    # 2,400 alerts x 14 escalation columns, and 4,800 deliveries x 7 columns, are each more
    # than SQLite's 32,766 and asyncpg's 32,767 bound values in one statement.
    world = await make_world(database)
    refs = await open_cases(database, world.team, 2400)
    no_email = EmailSender(SmtpSettings(host=""))

    results = await engine(world, no_email).deliver(alerts_for(world, refs))
    again = await engine(world, no_email).deliver(alerts_for(world, refs))

    assert Counter((r.outcome, r.sent) for r in results) == {(AlertOutcome.DELIVERED, 2): 2400}
    assert Counter((r.outcome, r.already_sent) for r in again) == {
        (AlertOutcome.DELIVERED, 2): 2400
    }
    async with database.sessions() as session:
        keys = [notify(ref).key for ref in refs[:500]]
        for model, column in ((Escalation, Escalation.key), (InboxItem, InboxItem.escalation_key)):
            count = await session.scalar(
                select(func.count()).select_from(model).where(column.in_(keys))
            )
            assert count == (500 if model is Escalation else 1000)
        sent = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.escalation_key.in_(keys))
        )
        assert sent == 1000
