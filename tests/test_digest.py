"""Digest emails: many alerts to one person in one batch go as one email.

Rendering (``render_digest``), the email (``EmailSender`` against a real aiosmtpd server) and
the batch (``AlertDelivery`` on SQLite and PostgreSQL, ``tests/db_fixtures.py``): below
``DIGEST_MIN_ALERTS`` a person gets one email per alert as before, from it one digest, and
the ledger still holds one delivery per (key, person, channel), sent or failed together.
"""

from collections import Counter
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.notify.delivery import DIGEST_MIN_ALERTS, AlertOutcome, AlertToDeliver
from caseclock.notify.email import (
    KEYS_HEADER,
    DigestEmail,
    EmailSender,
    digest_message_id,
    message_id,
)
from caseclock.notify.message import EmailContent, render_digest
from caseclock.units import Unit
from tests.db_fixtures import Database, database
from tests.test_delivery_batch import (
    DOMAIN,
    ROLES,
    alerts_for,
    engine,
    expected_emails,
    ledger,
    make_world,
    notify,
    open_cases,
    received,
    smtp,
)
from tests.test_message import DASHBOARD, make_action, make_deadline
from tests.test_notify_email import (
    PASSWORD,
    RECIPIENT,
    Mailbox,
    free_port,
    mailbox,
    plain_settings,
)

__all__ = ["database", "mailbox"]  # fixtures


def action(ref: str, **overrides: object) -> NotifyAction:
    return make_action(key=f"{ref}/assessment/1/2", case_ref=ref, **overrides)


def digest(actions: list[NotifyAction], covering_for: str | None = None) -> EmailContent:
    return render_digest(actions, "Sam Patel", "team_manager", covering_for, DASHBOARD)


def parsed(raw: bytes | None) -> EmailMessage:
    mail = message_from_bytes(raw or b"", policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def plain(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


# Rendering --------------------------------------------------------------------------------


def test_lists_the_most_urgent_first_and_counts_the_overdue() -> None:
    soon = make_deadline(
        due_date=date(2021, 1, 20), due_at=datetime(2021, 1, 20, 23, 59, 59, tzinfo=UTC)
    )
    late = make_deadline(
        due_date=date(2021, 1, 15), due_at=datetime(2021, 1, 15, 23, 59, 59, tzinfo=UTC)
    )
    actions = [
        action("SOON-3", level=3, state=AlertState.DUE_SOON, deadline=soon),
        action("OVER-1", level=1),
        action("OVER-2-LATER", deadline=late),
        action("OVER-2-EARLIER"),
        action("OVER-3", level=3, level_name="service manager"),
    ]

    message = digest(actions)

    assert message.subject == "Caseclock: 5 alerts for you (4 overdue)"
    order = ["OVER-3", "OVER-2-EARLIER", "OVER-2-LATER", "OVER-1", "SOON-3"]
    for body in (message.text_body, message.html_body):
        places = [body.index(f"Case {ref}: Child and family assessment") for ref in order]
        assert places == sorted(places)
    assert message == digest(list(reversed(actions)))  # the order given does not matter


def test_each_alert_says_what_a_single_alert_says_in_short() -> None:
    hours = make_deadline(
        unit=Unit.HOURS, due_at=datetime(2021, 1, 14, 14, 30, tzinfo=UTC), amount=72
    )
    actions = [
        action("CASE-0001"),
        action("CASE-0002", state=AlertState.DUE_SOON, level=1, level_name="social worker"),
        action("CASE-0003", deadline=hours),
    ]

    message = digest(actions)

    text = message.text_body
    assert text.startswith("Dear Sam Patel,\n\n")
    assert "3 alerts fell due for you at the same time: 2 overdue and 1 due soon." in text
    assert "You are getting these as team manager." in text
    assert (
        "2. Case CASE-0001: Child and family assessment\n"
        "Overdue, escalation level 2: team manager. "
        "It was due by the end of Thursday 14 January 2021.\n\n"
        "What to do: Complete the assessment and record the outcome in the case system.\n"
        f"{DASHBOARD}escalations/CASE-0001/assessment/1/2"
    ) in text
    assert "Overdue, escalation level 2: team manager. It was due by 2:30pm on Thursday" in text
    assert "Due soon, escalation level 1: social worker. It is due by the end of" in text
    for ref in ("CASE-0001", "CASE-0002", "CASE-0003"):
        link = f"{DASHBOARD}escalations/{ref}/assessment/1/2"
        assert link in text
        assert f'<a href="{link}">' in message.html_body
    assert text.rstrip().endswith(
        "Use the case reference to find the case in your case management system."
    )


def test_says_who_they_cover_for_and_that_none_is_overdue() -> None:
    actions = [action(f"CASE-{n}", state=AlertState.DUE_SOON) for n in range(5)]

    message = digest(actions, covering_for="Alex Jones")

    assert message.subject == "Caseclock: 5 alerts for you (none overdue)"
    assert "You are getting these as team manager, covering for Alex Jones." in message.text_body
    assert "covering for" not in digest(actions).text_body


def test_html_escapes_every_value_and_the_subject_stays_one_line() -> None:
    actions = [
        action(
            f"CASE-{n}",
            clock_title="Visits <b>& reviews</b>\r\nBcc: someone@example.com",
            what_to_do='Visit. <script>alert("x")</script>',
        )
        for n in range(5)
    ]

    message = digest(actions)

    assert "<script>" not in message.html_body
    assert "<b>" not in message.html_body
    assert "Visits &lt;b&gt;&amp; reviews&lt;/b&gt; Bcc: someone@example.com" in message.html_body
    assert "\n" not in message.subject
    assert "\r" not in message.subject


# The email --------------------------------------------------------------------------------

KEYS = tuple(f"CASE-{n:04d}/assessment/1/2" for n in range(6))


def test_message_id_is_derived_from_the_sorted_keys_and_the_recipient() -> None:
    first = digest_message_id(KEYS, RECIPIENT, DOMAIN)

    assert first == digest_message_id(tuple(reversed(KEYS)), RECIPIENT.upper(), DOMAIN)
    assert first.startswith("<digest-")
    assert first.endswith(f"@{DOMAIN}>")
    assert len(first) == len(message_id(KEYS[0], RECIPIENT, DOMAIN))
    others = {
        digest_message_id(KEYS[:-1], RECIPIENT, DOMAIN),
        digest_message_id(KEYS, "jo.bloggs@council.example.gov.uk", DOMAIN),
        *(message_id(key, RECIPIENT, DOMAIN) for key in KEYS),
    }
    assert first not in others
    assert len(others) == len(KEYS) + 2


async def test_a_digest_is_sent_with_its_keys_and_carries_nothing_else(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    sender = EmailSender(plain_settings(port))
    message = digest([action(key.split("/")[0]) for key in KEYS])

    errors = await sender.send_many([DigestEmail(RECIPIENT, message, KEYS)] * 2)

    assert errors == [None, None]
    first, again = (parsed(envelope.original_content) for envelope in handler.envelopes)
    assert set(first.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        KEYS_HEADER,
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    }
    assert first["Message-ID"] == again["Message-ID"] == digest_message_id(KEYS, RECIPIENT, DOMAIN)
    assert first[KEYS_HEADER] == " ".join(sorted(KEYS))
    assert first["Subject"] == "Caseclock: 6 alerts for you (6 overdue)"
    assert first["Auto-Submitted"] == "auto-generated"
    assert plain(first) == message.text_body
    html_part = first.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    assert html_part.get_content().replace("\r\n", "\n") == message.html_body
    for envelope in handler.envelopes:
        assert PASSWORD.encode() not in (envelope.original_content or b"")
    sender.close()


@pytest.mark.parametrize("bad", ["CASE-1\r\nBcc: x@y.z", "CASE 1/assessment/1/2"])
def test_a_bad_key_is_refused(bad: str) -> None:
    message = digest([action("CASE-1")])

    with pytest.raises(ValueError, match=r"control character|space"):
        EmailSender(plain_settings(25)).compose_digest(RECIPIENT, message, (*KEYS, bad))


async def test_smtp_down_fails_the_digest_naming_it() -> None:
    message = digest([action("CASE-1")])

    [error] = await EmailSender(plain_settings(free_port())).send_many(
        [DigestEmail(RECIPIENT, message, KEYS)]
    )

    assert "SMTP delivery of a digest of 6 alerts via 127.0.0.1" in str(error)


# The batch --------------------------------------------------------------------------------


def digest_keys(mail: EmailMessage) -> list[str]:
    return str(mail[KEYS_HEADER]).split()


async def test_below_the_threshold_each_alert_is_its_own_email(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, DIGEST_MIN_ALERTS - 1)

    results = await engine(world, smtp(port)).deliver(alerts_for(world, refs))

    assert {(r.outcome, r.sent) for r in results} == {(AlertOutcome.DELIVERED, 4)}
    assert received(handler) == Counter(
        {
            (message_id(notify(ref).key, world.email_of(code), DOMAIN), world.email_of(code)): 1
            for ref in refs
            for code in (world.manager, world.service_manager)
        }
    )
    assert all(parsed(e.original_content)[KEYS_HEADER] is None for e in handler.envelopes)


async def test_from_the_threshold_each_person_gets_one_digest_and_a_redelivery_nothing(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, DIGEST_MIN_ALERTS + 2)
    # The service manager is told of only two of them: two single emails for them.
    batch = [
        AlertToDeliver(
            action=notify(ref, ROLES if number < 2 else ("team_manager",)),
            team=world.team,
            allocated_worker=None,
        )
        for number, ref in enumerate(refs)
    ]
    delivery = engine(world, smtp(port))

    first = await delivery.deliver(batch)
    again = await delivery.deliver(batch)

    assert [(r.outcome, r.sent) for r in first] == [(AlertOutcome.DELIVERED, 4)] * 2 + [
        (AlertOutcome.DELIVERED, 2)
    ] * (len(refs) - 2)
    assert {(r.outcome, r.sent, r.failed) for r in again} == {(AlertOutcome.DELIVERED, 0, 0)}
    keys = [notify(ref).key for ref in refs]
    manager, service_manager = world.email_of(world.manager), world.email_of(world.service_manager)
    assert received(handler) == Counter(
        {
            (digest_message_id(keys, manager, DOMAIN), manager): 1,
            **{(message_id(key, service_manager, DOMAIN), service_manager): 1 for key in keys[:2]},
        }
    )
    [mail] = [parsed(e.original_content) for e in handler.envelopes if e.rcpt_tos == [manager]]
    assert sorted(digest_keys(mail)) == sorted(keys)
    text = plain(mail)
    assert mail["Subject"] == f"Caseclock: {len(refs)} alerts for you ({len(refs)} overdue)"
    for ref in refs:
        assert f"/escalations/{ref}/icpc/1/2" in text
    # Only the recipient's own name: nothing about anyone else, nothing about a child.
    assert "Dear Tam Manager," in text
    assert "Sam Service" not in text
    assert await ledger(world, refs) == {
        ("inbox", "sent", 1): len(refs) + 2,
        ("email", "sent", 1): len(refs) + 2,
    }


async def test_smtp_down_fails_every_delivery_of_the_digest_then_a_retry_sends_it_once(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, DIGEST_MIN_ALERTS + 1)
    batch = alerts_for(world, refs)

    down = await engine(world, smtp(free_port())).deliver(batch)

    assert {(r.outcome, r.sent, r.failed) for r in down} == {(AlertOutcome.FAILED, 2, 2)}
    for code in (world.manager, world.service_manager):
        errors = {
            part
            for r in down
            for part in (r.error or "").split("; ")
            if part.startswith(f"email to {code}:")
        }
        assert len(errors) == 1  # the same error for every delivery of the digest
        assert f"SMTP delivery of a digest of {len(refs)} alerts" in errors.pop()
    assert await ledger(world, refs) == {
        ("inbox", "sent", 1): 2 * len(refs),
        ("email", "failed", 1): 2 * len(refs),
    }

    up = await engine(world, smtp(port)).deliver(batch)

    assert {(r.outcome, r.sent, r.already_sent) for r in up} == {(AlertOutcome.DELIVERED, 2, 2)}
    assert received(handler) == expected_emails(world, refs)
    assert len(handler.envelopes) == 2
    assert await ledger(world, refs) == {
        ("inbox", "sent", 1): 2 * len(refs),
        ("email", "sent", 2): 2 * len(refs),
    }


async def test_a_refused_digest_fails_all_its_deliveries(
    database: Database, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    world = await make_world(database)
    refs = await open_cases(database, world.team, DIGEST_MIN_ALERTS)
    handler.refuse_with = "451 4.3.0 Try again later"

    refused = await engine(world, smtp(port)).deliver(alerts_for(world, refs))

    assert {(r.outcome, r.failed) for r in refused} == {(AlertOutcome.FAILED, 2)}
    assert all(f"refused a digest of {len(refs)} alerts: 451" in (r.error or "") for r in refused)
    handler.refuse_with = None
    retried = await engine(world, smtp(port)).deliver(alerts_for(world, refs))
    assert {r.outcome for r in retried} == {AlertOutcome.DELIVERED}
    assert received(handler) == expected_emails(world, refs)
