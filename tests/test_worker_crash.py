"""A worker killed with SIGKILL during a burst of due escalations loses nothing, repeats nothing.

The worker runs as a real process (``python -m worker``) against the dev server, a SQLite
read model and an SMTP server on loopback. Sixty cases whose referral decisions are long
overdue all escalate at once; the worker is killed mid-burst and started again.
"""

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.cases import open_case
from caseclock.codec import data_converter
from caseclock.core.events import CaseEvent
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.models import Delivery
from caseclock.db.read_model import ReadModel
from caseclock.definition.loader import load_definition
from caseclock.directory import load_directory
from caseclock.settings import DatabaseSettings, EncryptionSettings
from tests.engine_stack import Mailbox, directory_seed, free_port
from tests.helpers import wait_until
from workflows.case_types import Allocation

CASES = 60
PEOPLE = 5  # the overdue referral reaches all five rungs' roles
CHANNELS = 2  # inbox and email (the seed's webhook address is not served here)
DEFINITION = load_definition(Path(__file__).parents[1] / "definitions" / "child-protection.yaml")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )


async def test_sigkill_mid_burst_delivers_every_alert_exactly_once(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    url = f"sqlite+aiosqlite:///{tmp_path}/read-model.db"
    await upgrade_database_async(url)
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    # No webhook for anyone: deliveries are inbox and email only.
    seed = directory_seed("http://127.0.0.1:1/unused")
    for person in seed.staff:
        person.webhook_url = None
    await load_directory(sessions, seed)
    read_model = ReadModel(sessions)
    task_queue = f"crash-{uuid.uuid4()}"
    env = {
        **os.environ,
        "CASECLOCK_TEMPORAL__ADDRESS": local_env.client.service_client.config.target_host,
        "CASECLOCK_TEMPORAL__TASK_QUEUE": task_queue,
        "CASECLOCK_DATABASE__URL": url,
        "CASECLOCK_SMTP__HOST": "127.0.0.1",
        "CASECLOCK_SMTP__PORT": str(smtp_port),
        "CASECLOCK_LOG_LEVEL": "WARNING",
    }
    config = local_env.client.config()
    config["data_converter"] = data_converter(EncryptionSettings())
    await open_overdue_cases(Client(**config), task_queue)

    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:

        async def sent() -> int:
            return sum((await read_model.delivery_counts()).values())

        # Kill it once a good part of the burst is out, but not all of it.
        await wait_until(lambda: _at_least(sent, 40), timeout=60, interval=0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = await sent()
        assert killed_at < CASES * PEOPLE * CHANNELS, "the burst finished before the kill"
        async with sessions() as session:
            # Emails claimed but not marked sent when the worker died: the only ones that
            # may have reached the SMTP server without the ledger knowing.
            in_flight = await session.scalar(
                select(func.count()).where(Delivery.channel == "email", Delivery.status != "sent")
            )

        worker = start_worker(env, log)
        expected = CASES * PEOPLE * CHANNELS
        await wait_until(lambda: _at_least(sent, expected), timeout=180, interval=0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        smtp.stop()

    counts = await read_model.delivery_counts()
    assert len(counts) == CASES
    assert set(counts.values()) == {PEOPLE * CHANNELS}
    inbox = await read_model.inbox("TM-1")
    assert len(inbox) == CASES
    # Every email arrived. SMTP has no transactions: an email accepted by the server just
    # before the kill, but not yet marked sent, is sent again, with the same Message-ID so
    # the mail system can drop it. Only those in flight at the kill may be repeated.
    ids = Counter(message["Message-ID"] for message in mailbox.messages)
    assert len(ids) == CASES * PEOPLE
    resent = sum(ids.values()) - len(ids)
    assert resent <= (in_flight or 0), f"{resent} resent, {in_flight} were in flight"
    await engine.dispose()


async def open_overdue_cases(client: Client, task_queue: str) -> None:
    """Cases whose referral decision was due 11 working days ago: all rungs at once."""
    now = datetime.now(UTC)
    calendar = build_england_and_wales_calendar(2020, 2035)
    received = calendar.add_working_days(local_date(now), -12)
    for number in range(CASES):
        ref = f"CR-{number:04d}"
        referral = CaseEvent(
            event_id=f"{ref}-r",
            type="referral_received",
            effective_date=received,
            recorded_at=now,
            recorded_by="SW-1",
        )
        allocation = Allocation(team="T1", worker="SW-1")
        await open_case(client, task_queue, DEFINITION, ref, allocation, [referral], now)


async def _at_least(sent, target: int) -> bool:
    return await sent() >= target
