"""What one alert's delivery costs outside Temporal: one at a time, and in batches.

Not a scenario: a diagnosis behind docs/BENCHMARKS.md. Storm alerts (one per case, to the
team manager and the service manager, by inbox and email to a loopback SMTP server, on a
fresh SQLite read model) are delivered in this process, several ways, each timed over
fresh cases and repeated (medians of ms per alert):

1. ``per-alert (old)``: the delivery as ``notify_escalation`` did it before batching
   (``legacy_notify`` below: the escalation upserted and read back, the directory resolved
   in its own session, then per person and channel a claim, an ``EmailMessage`` sent over
   a new SMTP connection or an inbox write, and a mark: 11 write transactions per alert);
2. ``notify_escalation``: the activity as it is now, ``AlertDelivery.deliver`` of one alert
   (two write transactions, SMTP sessions reused);
3. ``batch of B``: ``AlertDelivery.deliver`` of B alerts at once, for B in ``--batches``
   (two write transactions and one SMTP session per batch);
4. the same batches without email (inbox only), to price the email path.

The SMTP server runs in a process of its own (as a relay would), so what it does per email
is not charged to the sender. All the bench's alerts are for one team
(``bench.common.directory_seed``), so a batch resolves the directory once; with many teams
a batch resolves each distinct (team, worker, roles, day) once. A cProfile split of one
batch size says where the time goes.

Run: ``python -m bench.profile_notify --repeats 5``.
"""

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.case_activities import NotifyActivities, NotifyEscalationInput
from bench.arms import police_protection, storm_definition
from bench.common import directory_seed, free_port, load_average, write_result
from caseclock.calendar import local_date
from caseclock.cases import calendar_for
from caseclock.core.actions import NotifyAction
from caseclock.core.engine import apply_event, due_alerts, start_case
from caseclock.db.engine import create_engine_and_sessions, insert_for
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.models import Case
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory, load_directory
from caseclock.logging import configure_logging
from caseclock.notify.delivery import AlertDelivery, AlertToDeliver
from caseclock.notify.email import EmailSender
from caseclock.notify.message import render_alert
from caseclock.settings import DatabaseSettings, SmtpSettings

DASHBOARD = "http://x"
TEAM, WORKER = "T1", "SW-1"
STEPS = (
    "resolve_many",
    "record_alerts_and_claim",
    "_send",
    "send_many",
    "_post_all",
    "mark_batch",
    "render_alert",
    "compose",
    "_transmit",
)

Deliver = Callable[[list[AlertToDeliver]], Awaitable[None]]
_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE | re.IGNORECASE)


class IdFile:
    """An aiosmtpd handler that appends each email's Message-ID to a file, unparsed."""

    def __init__(self, path: Path) -> None:
        self._out = path.open("a", encoding="ascii")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the Message-ID of each email accepted (aiosmtpd handler hook)."""
        found = _MESSAGE_ID.search(envelope.original_content)
        self._out.write((found.group(1).decode() if found else "-") + "\n")
        self._out.flush()
        return "250 OK"


def serve_smtp(port: int, ids: Path) -> None:
    """Run the loopback SMTP server until killed (``--serve-smtp``)."""
    controller = Controller(IdFile(ids), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


@dataclass
class Mailbox:
    """The Message-IDs the SMTP server process has accepted."""

    ids: Path

    @property
    def message_ids(self) -> list[str]:
        """Every Message-ID received so far, in order."""
        return self.ids.read_text(encoding="ascii").split() if self.ids.exists() else []


@contextmanager
def smtp_server(folder: Path) -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server in its own process, as a mail relay is: its work is not timed here."""
    port = free_port()
    ids = folder / "message-ids.txt"
    command = [sys.executable, "-m", "bench.profile_notify", "--serve-smtp", str(port)]
    server = subprocess.Popen([*command, "--ids", str(ids)])
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the SMTP server did not start")
            time.sleep(0.05)
        yield Mailbox(ids), port
    finally:
        server.terminate()
        server.wait(timeout=20)


def storm_action() -> NotifyAction:
    """One storm alert from the core (police protection, overdue at once)."""
    definition = storm_definition()
    now = datetime.now(UTC)
    calendar = calendar_for(local_date(now) - timedelta(days=4), local_date(now))
    event = police_protection("TEMPLATE-0", now - timedelta(minutes=5), now)
    outcome = apply_event(definition, start_case(definition, "TEMPLATE-0"), event, calendar, now)
    alerts = due_alerts(definition, outcome.state, now)
    return next(a for a in alerts.actions if isinstance(a, NotifyAction))


class Cases:
    """Fresh storm alerts, their cases already in the read model (not timed)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._template = storm_action()
        self._made = 0

    async def alerts(self, n: int) -> list[AlertToDeliver]:
        """``n`` alerts of new cases, each case inserted in the read model."""
        refs = [f"B{self._made + number:07d}" for number in range(n)]
        self._made += n
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = [
            {
                "case_ref": ref,
                "definition_id": "child-protection",
                "definition_version": "x",
                "team_code": TEAM,
                "allocated_worker_code": WORKER,
                "opened_on": local_date(now),
                "closed_on": None,
                "current_stages": {},
                "updated_at": now,
            }
            for ref in refs
        ]
        async with self._sessions.begin() as session:
            await session.execute(insert_for(session, Case), rows)
        suffix = self._template.key.removeprefix(self._template.case_ref)
        return [
            AlertToDeliver(
                action=self._template.model_copy(update={"key": ref + suffix, "case_ref": ref}),
                team=TEAM,
                allocated_worker=WORKER,
            )
            for ref in refs
        ]


def _old_smtp_send(settings: SmtpSettings, mail: EmailMessage, to_address: str) -> None:
    """The old ``EmailSender._deliver``: a new connection, EHLO, ``send_message``, QUIT."""
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
        smtp.ehlo()
        smtp.send_message(mail, from_addr=settings.sender, to_addrs=[to_address])


async def legacy_notify(
    read_model: ReadModel,
    directory: Directory,
    email: EmailSender,
    settings: SmtpSettings,
    alert: AlertToDeliver,
) -> None:
    """The per-alert delivery before batching, step for step (for comparison only)."""
    action = alert.action
    await read_model.record_escalation(action)
    recipients = await directory.resolve(
        alert.team, alert.allocated_worker, action.roles, local_date(action.fire_at)
    )
    for person in recipients:
        for channel in ["inbox", "email"] if person.email and email.enabled else ["inbox"]:
            key, staff = action.key, person.staff_code
            if not await read_model.claim_delivery(key, staff, channel):
                continue
            message = render_alert(
                action, person.display_name, person.role, person.covering_for, DASHBOARD
            )
            if channel == "inbox":
                await read_model.add_inbox_item(staff, key)
            else:
                mail = email.compose(person.email, message, key)  # EmailMessage, as before
                await asyncio.to_thread(_old_smtp_send, settings, mail, person.email)
            await read_model.mark_delivered(key, staff, channel)


async def timed(
    cases: Cases, deliver: Deliver, batch: int, total: int, repeats: int
) -> dict[str, Any]:
    """Median (and spread) of ms per alert over ``repeats`` runs of ``total`` alerts."""
    runs: list[float] = []
    for _ in range(repeats):
        alerts = await cases.alerts(total)
        began = time.perf_counter()
        for start in range(0, total, batch):
            await deliver(alerts[start : start + batch])
        runs.append((time.perf_counter() - began) / total * 1000)
    return {
        "batch": batch,
        "alerts_per_run": total,
        "ms_per_alert_median": round(statistics.median(runs), 3),
        "ms_per_alert_runs": [round(run, 3) for run in runs],
    }


async def measure(
    folder: Path, repeats: int, per_alert_n: int, batches: Sequence[int], profile_batch: int
) -> dict[str, Any]:
    """Run every way; figures in ms per alert."""
    configure_logging("WARNING")
    url = f"sqlite+aiosqlite:///{folder}/read-model.db"
    await upgrade_database_async(url)
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    await load_directory(sessions, directory_seed())
    read_model = ReadModel(sessions, claim_lease=timedelta(seconds=45))
    directory = Directory(sessions)
    cases = Cases(sessions)
    found: dict[str, Any] = {"load_average_before": load_average()}
    with smtp_server(folder) as (mailbox, port):
        smtp_settings = SmtpSettings(host="127.0.0.1", port=port)
        email = EmailSender(smtp_settings)
        no_email = EmailSender(SmtpSettings(host=""))
        notify = NotifyActivities(read_model, directory, email, None, DASHBOARD)
        delivery = AlertDelivery(read_model, directory, email, None, DASHBOARD)
        inbox_only = AlertDelivery(read_model, directory, no_email, None, DASHBOARD)

        async def old(alerts: list[AlertToDeliver]) -> None:
            for alert in alerts:
                await legacy_notify(read_model, directory, email, smtp_settings, alert)

        async def activity(alerts: list[AlertToDeliver]) -> None:
            for alert in alerts:
                await notify.notify_escalation(
                    NotifyEscalationInput(
                        action=alert.action,
                        team=alert.team,
                        allocated_worker=alert.allocated_worker,
                    )
                )

        async def batched(alerts: list[AlertToDeliver]) -> None:
            await delivery.deliver(alerts)

        async def batched_inbox_only(alerts: list[AlertToDeliver]) -> None:
            await inbox_only.deliver(alerts)

        ways: dict[str, Any] = {
            "per-alert (old)": await timed(cases, old, 1, per_alert_n, repeats),
            "notify_escalation": await timed(cases, activity, 1, per_alert_n, repeats),
        }
        for size in batches:
            total = max(size, per_alert_n)
            ways[f"batch of {size}"] = await timed(cases, batched, size, total, repeats)
        for size in batches:
            total = max(size, per_alert_n)
            ways[f"batch of {size}, no email"] = await timed(
                cases, batched_inbox_only, size, total, repeats
            )
        found["ways"] = ways
        alerts = await cases.alerts(profile_batch)
        profile = cProfile.Profile()
        profile.enable()
        await delivery.deliver(alerts)
        profile.disable()
        found[f"profiled_split_batch_of_{profile_batch}_ms_per_alert"] = _split(
            profile, profile_batch
        )
        found["emails_received"] = len(mailbox.message_ids)
        found["emails_unique_message_ids"] = len(set(mailbox.message_ids))
        email.close()
    found["load_average_after"] = load_average()
    await engine.dispose()
    return found


def _split(profile: cProfile.Profile, n: int) -> dict[str, float]:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    split: dict[str, float] = {}
    for (_, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function in STEPS:
            split[function] = round(split.get(function, 0.0) + cumulative / n * 1000, 3)
    return split


def main() -> None:
    """Measure and print."""
    parse = argparse.ArgumentParser(prog="python -m bench.profile_notify")
    parse.add_argument("--repeats", type=int, default=5)
    parse.add_argument("--n", type=int, default=200, help="alerts per run of the per-alert ways")
    parse.add_argument("--batches", type=int, nargs="+", default=[1, 50, 200, 500])
    parse.add_argument("--profile-batch", type=int, default=200)
    parse.add_argument("--out", type=Path, default=None)
    parse.add_argument("--serve-smtp", type=int, default=None, help=argparse.SUPPRESS)
    parse.add_argument("--ids", type=Path, default=None, help=argparse.SUPPRESS)
    args = parse.parse_args()
    if args.serve_smtp is not None:
        serve_smtp(args.serve_smtp, args.ids)
        return
    folder = Path(tempfile.mkdtemp(prefix="caseclock-notify-"))
    found = asyncio.run(measure(folder, args.repeats, args.n, args.batches, args.profile_batch))
    print(json.dumps(found, indent=2))
    write_result(
        "profile_notify",
        {"n": args.n, "repeats": args.repeats, "batches": args.batches, **found},
        args.out,
    )


if __name__ == "__main__":
    main()
