"""Where one alert's time goes outside Temporal, and what batching its ledger writes saves.

Not a scenario: a diagnosis behind docs/BENCHMARKS.md. ``--n`` alerts of the storm (one
per case, to the team manager and the service manager, by inbox and email to a loopback
SMTP server) are delivered one after another, in this process, three ways:

1. ``record_actions`` then ``notify_escalation``: the activities exactly as the worker runs
   them, timed per call and per read-model step (cProfile, cumulative);
2. the same without email (inbox only), to price the email path;
3. a prototype of the proposed batched delivery (``batched_notify`` below): the escalation,
   every claim, the inbox items and their "sent" marks in one transaction, then the emails,
   then their "sent" marks in one transaction. Same ledger rows, same claim-before-send
   order, so the same exactly-once guarantee; 3 transactions per alert instead of 11.

Run: ``python -m bench.profile_notify --n 300``.
"""

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from activities.case_activities import (
    NotifyActivities,
    NotifyEscalationInput,
    ReadModelActivities,
    RecordActionsInput,
)
from bench.arms import police_protection, storm_definition
from bench.common import directory_seed, smtp_server, write_result
from caseclock.calendar import local_date
from caseclock.cases import calendar_for
from caseclock.core.actions import NotifyAction
from caseclock.core.engine import apply_event, due_alerts, start_case
from caseclock.db.engine import create_engine_and_sessions, insert_for
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.models import Delivery, Escalation, InboxItem
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory, load_directory
from caseclock.logging import configure_logging
from caseclock.notify.email import EmailSender
from caseclock.notify.message import render_alert
from caseclock.settings import DatabaseSettings, SmtpSettings

STEPS = (
    "record_actions",
    "notify_escalation",
    "record_escalation",
    "resolve",
    "claim_delivery",
    "add_inbox_item",
    "send",
    "mark_delivered",
    "render_alert",
)


def storm_alerts(n: int, prefix: str) -> list[tuple[RecordActionsInput, NotifyAction, Any]]:
    """Per case: its opening facts, its alert's facts, and the alert (from the core)."""
    definition = storm_definition()
    now = datetime.now(UTC)
    calendar = calendar_for(local_date(now) - timedelta(days=4), local_date(now))
    made = []
    for number in range(n):
        ref = f"{prefix}-{number:05d}"
        event = police_protection(ref, now - timedelta(minutes=5), now)
        outcome = apply_event(definition, start_case(definition, ref), event, calendar, now)
        alerts = due_alerts(definition, outcome.state, now)
        notify = next(a for a in alerts.actions if isinstance(a, NotifyAction))
        facts = [a for a in alerts.actions if not isinstance(a, NotifyAction)]
        made.append(
            (
                RecordActionsInput(case_ref=ref, actions=list(outcome.actions)),
                notify,
                RecordActionsInput(case_ref=ref, actions=facts),
            )
        )
    return made


async def batched_notify(
    read_model: ReadModel, directory: Directory, email: EmailSender, request: NotifyEscalationInput
) -> None:
    """The proposed delivery: three transactions per alert, the same ledger rows."""
    action = request.action
    sessions = read_model._sessions
    recipients = await directory.resolve(
        request.team, request.allocated_worker, action.roles, local_date(action.fire_at)
    )
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=45)
    emails = []
    async with sessions.begin() as session:
        escalation = insert_for(session, Escalation).values(
            key=action.key,
            case_ref=action.case_ref,
            clock_id=action.clock_id,
            clock_title=action.clock_title,
            occurrence=action.occurrence,
            level=action.level,
            level_name=action.level_name,
            covers_levels=list(action.covers_levels),
            state=action.state.value,
            roles=list(action.roles),
            fire_at=action.fire_at,
            due_at=action.deadline.due_at,
            what_to_do=action.what_to_do,
            created_at=now,
        )
        await session.execute(escalation.on_conflict_do_nothing(index_elements=["key"]))
        for person in recipients:
            channels = ["inbox", "email"] if person.email else ["inbox"]
            claims = insert_for(session, Delivery).values(
                [
                    {
                        "escalation_key": action.key,
                        "staff_code": person.staff_code,
                        "channel": channel,
                        "status": "sent" if channel == "inbox" else "pending",
                        "attempts": 1,
                        "claimed_until": None if channel == "inbox" else lease,
                        "sent_at": now if channel == "inbox" else None,
                    }
                    for channel in channels
                ]
            )
            claimed = await session.execute(
                claims.on_conflict_do_nothing(
                    index_elements=["escalation_key", "staff_code", "channel"]
                ).returning(Delivery.channel)
            )
            got = set(claimed.scalars())
            if "inbox" in got:
                inbox = insert_for(session, InboxItem).values(
                    staff_code=person.staff_code, escalation_key=action.key, created_at=now
                )
                await session.execute(inbox.on_conflict_do_nothing())
            if "email" in got:
                emails.append(person)
    for person in emails:
        message = render_alert(
            action, person.display_name, person.role, person.covering_for, "http://x"
        )
        await email.send(person.email, message, action.key)
    if emails:
        async with sessions.begin() as session:
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.escalation_key == action.key,
                    Delivery.channel == "email",
                    Delivery.staff_code.in_([person.staff_code for person in emails]),
                )
                .values(status="sent", sent_at=datetime.now(UTC), claimed_until=None)
                .execution_options(synchronize_session=False)
            )


async def measure(n: int, folder: Path) -> dict[str, Any]:
    """Run the three ways and return seconds per alert and the per-step split."""
    configure_logging("WARNING")
    url = f"sqlite+aiosqlite:///{folder}/read-model.db"
    await upgrade_database_async(url)
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    await load_directory(sessions, directory_seed())
    read_model = ReadModel(sessions)
    directory = Directory(sessions)
    records = ReadModelActivities(read_model)
    found: dict[str, Any] = {}
    with smtp_server() as (mailbox, port):
        email = EmailSender(SmtpSettings(host="127.0.0.1", port=port))
        ways = {
            "current": NotifyActivities(read_model, directory, email, None, "http://x"),
            "current, no email": NotifyActivities(
                read_model, directory, EmailSender(SmtpSettings(host="")), None, "http://x"
            ),
        }
        for name, notify in ways.items():
            # Timed without the profiler, then profiled on other cases for the split.
            timed = await prepared(read_model, records, n, f"{len(found)}t")
            began = time.perf_counter()
            for _, action, facts in timed:
                await records.record_actions(facts)
                await notify.notify_escalation(_request(action))
            seconds = time.perf_counter() - began
            profiled = await prepared(read_model, records, n, f"{len(found)}p")
            profile = cProfile.Profile()
            profile.enable()
            for _, action, facts in profiled:
                await records.record_actions(facts)
                await notify.notify_escalation(_request(action))
            profile.disable()
            found[name] = {
                "ms_per_alert": round(seconds / n * 1000, 2),
                "profiled_split": _split(profile, n),
            }
        timed = await prepared(read_model, records, n, "batched")
        began = time.perf_counter()
        for _, action, facts in timed:
            await records.record_actions(facts)
            await batched_notify(read_model, directory, email, _request(action))
        seconds = time.perf_counter() - began
        found["batched (prototype)"] = {"ms_per_alert": round(seconds / n * 1000, 2)}
        found["emails_received"] = len(mailbox.message_ids)
    await engine.dispose()
    return found


def _now() -> datetime:
    return datetime.now(UTC)


def _request(action: NotifyAction) -> NotifyEscalationInput:
    return NotifyEscalationInput(action=action, team="T1", allocated_worker="SW-1")


async def prepared(
    read_model: ReadModel, records: ReadModelActivities, n: int, prefix: str
) -> list[tuple[RecordActionsInput, NotifyAction, Any]]:
    """Storm alerts for n new cases, the cases already opened in the read model."""
    alerts = storm_alerts(n, f"P{prefix}")
    for opened, _, _ in alerts:
        await read_model.upsert_case(
            opened.case_ref, "child-protection", "x", "T1", "SW-1", local_date(_now())
        )
        await records.record_actions(opened)
    return alerts


def _split(profile: cProfile.Profile, n: int) -> dict[str, float]:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    split: dict[str, float] = {}
    for (_, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function in STEPS:
            split[f"{function}_ms"] = round(
                split.get(f"{function}_ms", 0.0) + cumulative / n * 1000, 2
            )
    return split


def main() -> None:
    """Measure and print."""
    parse = argparse.ArgumentParser(prog="python -m bench.profile_notify")
    parse.add_argument("--n", type=int, default=300)
    parse.add_argument("--out", type=Path, default=None)
    args = parse.parse_args()
    found = asyncio.run(measure(args.n, Path(tempfile.mkdtemp(prefix="caseclock-notify-"))))
    print(json.dumps(found, indent=2))
    write_result("profile_notify", {"n": args.n, "ways": found}, args.out)


if __name__ == "__main__":
    main()
