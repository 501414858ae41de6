"""The three arms of a run, each with its own fresh server and worker process.

- ``CaseclockArm``: Caseclock's worker (``python -m bench.caseclock_worker``, the production
  wiring) with a migrated SQLite read model, the directory, and email to a loopback SMTP
  server; cases are opened with ``caseclock.cases.open_case`` and events recorded with
  ``caseclock.cases.record_event``, the paths the CLI and API use.
- ``FloorArm``: ``bench.floor`` on the same kind of dev server.
- ``DbosArm``: ``bench.peer_dbos`` in a process of its own (DBOS runs inside the app).
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from bench import rows
from bench.common import (
    PYTHON,
    ChildProcess,
    CpuMeter,
    Mailbox,
    ProcessCpu,
    caseclock_env,
    dev_server,
    dev_server_pid,
    directory_seed,
    smtp_server,
    sqlite_bytes,
)
from bench.floor import FloorDeadline, FloorInput
from caseclock.calendar import LONDON, local_date
from caseclock.cases import open_case
from caseclock.codec import data_converter
from caseclock.core.events import CaseEvent
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.models import Case, Clock, Delivery, Escalation
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition
from caseclock.devserver import DevServer
from caseclock.directory import load_directory
from caseclock.settings import DatabaseSettings, EncryptionSettings
from workflows.case_types import Allocation

DEFINITION_PATH = Path(__file__).resolve().parents[1] / "definitions" / "child-protection.yaml"
START_CONCURRENCY = 20
POLICE_PROTECTION_HOURS = 72
STORM_ALERT_LEVEL = "overdue"
# The overdue rung of police protection tells the team manager and the service manager,
# each by inbox and email: four deliveries per alert.
STORM_DELIVERIES_PER_ALERT = 4


def child_protection() -> Definition:
    """The shipped child-protection definition, as cases are opened with it."""
    return load_definition(DEFINITION_PATH)


def storm_definition() -> Definition:
    """Child protection with the police-protection ladder cut to its overdue rung.

    Each case then has exactly one alert, at the instant its 72 hours run out, so a storm
    is N alerts due at one instant and nothing else. The path (the case's plan, the sweep,
    the ledger, SMTP) is the one every planned alert takes.
    """
    definition = child_protection()
    hourly = definition.ladders["hourly"]
    overdue = tuple(step for step in hourly.steps if step.name == STORM_ALERT_LEVEL)
    ladders = {**definition.ladders, "hourly": hourly.model_copy(update={"steps": overdue})}
    return definition.model_copy(
        update={"ladders": ladders, "version": f"{definition.version}+storm"}
    )


def referral(case_ref: str, now: datetime) -> CaseEvent:
    """The opening event of an ordinary case: a referral received today."""
    return CaseEvent(
        event_id=f"{case_ref}-r",
        type="referral_received",
        effective_date=local_date(now),
        recorded_at=now,
        recorded_by="SW-1",
    )


def police_protection(case_ref: str, due: datetime, now: datetime) -> CaseEvent:
    """Police protection that started 72 hours before ``due``: it runs out at ``due``."""
    started = (due - timedelta(hours=POLICE_PROTECTION_HOURS)).astimezone(LONDON)
    return CaseEvent(
        event_id=f"{case_ref}-pp",
        type="police_protection_started",
        effective_date=started.date(),
        effective_at=started,
        recorded_at=now,
        recorded_by="SW-1",
    )


async def gather_limited(count: int, limit: int, make: Any) -> list[float]:
    """Run ``make(i)`` for i in range(count), at most ``limit`` at once; each call's seconds."""
    gate = asyncio.Semaphore(limit)
    took: list[float] = [0.0] * count

    async def one(number: int) -> None:
        async with gate:
            began = time.monotonic()
            await make(number)
            took[number] = time.monotonic() - began

    await asyncio.gather(*(one(number) for number in range(count)))
    return took


@dataclass
class CaseclockArm:
    """A running Caseclock: server, worker process, read model, SMTP inbox."""

    folder: Path
    server: DevServer
    client: Client
    worker: ChildProcess
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    mailbox: Mailbox
    task_queue: str
    name: str = "caseclock"
    extra_workers: list[ChildProcess] = field(default_factory=list)

    def meter(self) -> CpuMeter:
        """CPU of the dev server and the worker, for where the time goes."""
        processes = {"dev server": _cpu_of(dev_server_pid(self.server)), "worker": self.worker.cpu}
        for number, extra in enumerate(self.extra_workers, start=2):
            processes[f"worker {number}"] = extra.cpu
        return CpuMeter(processes)

    async def open_cases(
        self, prefix: str, count: int, events: Any, definition: Definition
    ) -> list[float]:
        """Open ``count`` cases (``events(case_ref, now)`` gives each its opening events)."""
        allocation = Allocation(team="T1", worker="SW-1")

        async def one(number: int) -> None:
            ref = f"{prefix}-{number:06d}"
            now = datetime.now(UTC)
            await open_case(
                self.client, self.task_queue, definition, ref, allocation, events(ref, now), now
            )

        return await gather_limited(count, START_CONCURRENCY, one)

    async def count(self, model: Any) -> int:
        """Rows of a read-model table."""
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def opened(self) -> int:
        """Cases recorded as opened in the read model."""
        return await self.count(Case)

    async def clocks(self) -> int:
        """Clock occurrences recorded in the read model."""
        return await self.count(Clock)

    async def sent(self) -> int:
        """Deliveries marked sent in the ledger."""
        async with self.sessions() as session:
            query = select(func.count()).where(Delivery.status == "sent")
            return int(await session.scalar(query) or 0)

    async def alert_delivered_at(self, level: str) -> dict[str, tuple[int, float]]:
        """Per escalation of a level: sent deliveries and the last sent instant (epoch)."""
        query = (
            select(Delivery.escalation_key, func.count(), func.max(Delivery.sent_at))
            .join(Escalation, Escalation.key == Delivery.escalation_key)
            .where(Delivery.status == "sent", Escalation.level_name == level)
            .group_by(Delivery.escalation_key)
        )
        async with self.sessions() as session:
            found = await session.execute(query)
            return {key: (count, _epoch(last)) for key, count, last in found.all()}

    def temporal_bytes(self) -> int:
        """Bytes of the dev server's SQLite database."""
        return sqlite_bytes(self.server.db_path)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    parsed = datetime.fromisoformat(str(value))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _cpu_of(pid: int) -> ProcessCpu:
    return ProcessCpu(pid)


@asynccontextmanager
async def caseclock_arm(folder: Path, tuning: str = "") -> AsyncIterator[CaseclockArm]:
    """Start a dev server, SMTP server, read model and Caseclock worker(s) in ``folder``.

    ``tuning`` (see ``bench.caseclock_worker``) may also hold ``workers=K`` for K worker
    processes on the task queue, ``cache=K`` for the worker cache (``max_cached_workflows``),
    and ``noemail`` to switch email off (a diagnosis only).
    """
    folder.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(dev_server(folder / "temporal"))
        mailbox, smtp_port = stack.enter_context(smtp_server())
        url = f"sqlite+aiosqlite:///{folder}/read-model.db"
        await upgrade_database_async(url)
        engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
        stack.push_async_callback(engine.dispose)
        await load_directory(sessions, directory_seed())
        client = await Client.connect(
            server.address, data_converter=data_converter(EncryptionSettings())
        )
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        smtp = 0 if "noemail" in tuning else smtp_port
        env = caseclock_env(server.address, task_queue, url, smtp, tuning=tuning)
        for part in tuning.split(","):
            if part.startswith("cache="):
                env["CASECLOCK_TEMPORAL__MAX_CACHED_WORKFLOWS"] = part.removeprefix("cache=")
        workers = [
            ChildProcess(
                [PYTHON, "-m", "bench.caseclock_worker"], env, folder / f"worker-{number}.log"
            ).start()
            for number in range(_worker_count(tuning))
        ]
        for extra in workers:
            stack.callback(extra.stop)
        arm = CaseclockArm(
            folder, server, client, workers[0], engine, sessions, mailbox, task_queue
        )
        arm.extra_workers = workers[1:]
        yield arm


def _worker_count(tuning: str) -> int:
    for part in tuning.split(","):
        if part.startswith("workers="):
            return int(part.removeprefix("workers="))
    return 1


@dataclass
class FloorArm:
    """A running floor: server, worker process, rows file."""

    folder: Path
    server: DevServer
    client: Client
    worker: ChildProcess
    rows_db: Path
    task_queue: str
    name: str = "floor"

    def meter(self) -> CpuMeter:
        """CPU of the dev server and the worker."""
        return CpuMeter(
            {"dev server": _cpu_of(dev_server_pid(self.server)), "worker": self.worker.cpu}
        )

    async def open_cases(self, prefix: str, count: int, due: datetime) -> list[float]:
        """Start ``count`` floor workflows whose deadline is ``due``."""

        async def one(number: int) -> None:
            key = f"{prefix}-{number:06d}"
            await self.client.start_workflow(
                FloorDeadline.run,
                FloorInput(key=key, due_epoch=due.timestamp()),
                id=f"floor/{key}",
                task_queue=self.task_queue,
            )

        return await gather_limited(count, START_CONCURRENCY, one)

    async def opened(self) -> int:
        """Floor workflows that have written their "opened" row."""
        return await asyncio.to_thread(rows.count, self.rows_db, "opened")

    def temporal_bytes(self) -> int:
        """Bytes of the dev server's SQLite database."""
        return sqlite_bytes(self.server.db_path)


@asynccontextmanager
async def floor_arm(folder: Path, tuning: str = "") -> AsyncIterator[FloorArm]:
    """Start a dev server and the floor's worker in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows_db = folder / "rows.db"
    rows.connect(rows_db).close()
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(dev_server(folder / "temporal"))
        client = await Client.connect(server.address)
        task_queue = f"floor-{uuid.uuid4().hex[:8]}"
        env = caseclock_env(server.address, task_queue, "", 0, tuning=tuning)
        worker = ChildProcess(
            [PYTHON, "-m", "bench.floor_worker", server.address, task_queue, str(rows_db)],
            env,
            folder / "worker.log",
        ).start()
        stack.callback(worker.stop)
        yield FloorArm(folder, server, client, worker, rows_db, task_queue)


@dataclass
class DbosArm:
    """The DBOS peer's files and process (started by ``launch``)."""

    folder: Path
    sysdb: Path
    rows_db: Path
    process: ChildProcess | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    name: str = "dbos"

    def launch(self, start: int = 0, prefix: str = "case", due: float = 0.0) -> ChildProcess:
        """Start the peer's process, which recovers pending workflows and starts ``start``."""
        args = [PYTHON, "-m", "bench.peer_dbos_app", str(self.sysdb), str(self.rows_db)]
        args += ["--start", str(start), "--prefix", prefix, "--due", str(due)]
        self.process = ChildProcess(args, caseclock_env("", "", "", 0), self.folder / "peer.log")
        self.process.start()
        return self.process

    def started_seconds(self) -> float | None:
        """Seconds the peer took to start its workflows, once it has said so."""
        for line in self.folder.joinpath("peer.log").read_text(errors="replace").splitlines():
            if line.startswith('{"started"'):
                return float(json.loads(line)["seconds"])
        return None

    async def opened(self) -> int:
        """Peer workflows that have written their "opened" row."""
        return await asyncio.to_thread(rows.count, self.rows_db, "opened")

    def storage_bytes(self) -> int:
        """Bytes of the peer's SQLite system database."""
        return sqlite_bytes(self.sysdb)


def dbos_arm(folder: Path) -> DbosArm:
    """The peer's files in ``folder`` (nothing runs until ``launch``)."""
    folder.mkdir(parents=True, exist_ok=True)
    arm = DbosArm(folder, folder / "dbos-system.db", folder / "rows.db")
    rows.connect(arm.rows_db).close()
    return arm
