"""A real engine for tests: migrated SQLite read model, directory, worker, SMTP and webhook.

Nothing is mocked: the worker is the production wiring (``worker.build_worker``), emails go
to an aiosmtpd server on loopback, and webhooks to an HTTP server on loopback.
"""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from caseclock.cases import open_case
from caseclock.codec import data_converter
from caseclock.core.events import CaseEvent
from caseclock.db.alert_plan import AlertPlan
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.read_model import ReadModel
from caseclock.db.step_writer import step_writer_for
from caseclock.definition.schema import Definition
from caseclock.directory import Directory, DirectorySeed, load_directory
from caseclock.settings import DatabaseSettings, Settings, SmtpSettings, TemporalSettings
from worker import build_worker
from workflows.case_types import Allocation


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """What the loopback SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@dataclass
class WebhookLog:
    """What the loopback webhook server received."""

    posts: list[dict[str, Any]] = field(default_factory=list)


def directory_seed(webhook_url: str) -> DirectorySeed:
    """One service, one team; the team manager also gets webhook posts."""
    return DirectorySeed.model_validate(
        {
            "services": [
                {
                    "code": "SVC",
                    "name": "Safeguarding",
                    "service_manager": "SM-1",
                    "head_of_service": "HOS-1",
                }
            ],
            "teams": [{"code": "T1", "name": "Team One", "service": "SVC", "manager": "TM-1"}],
            "staff": [
                {
                    "code": "SW-1",
                    "display_name": "Sam Worker",
                    "email": "sw1@example.org",
                    "role": "social_worker",
                    "team": "T1",
                },
                {
                    "code": "TM-1",
                    "display_name": "Tara Manager",
                    "email": "tm1@example.org",
                    "role": "team_manager",
                    "team": "T1",
                    "webhook_url": webhook_url,
                },
                {
                    "code": "SM-1",
                    "display_name": "Sian Service",
                    "email": "sm1@example.org",
                    "role": "service_manager",
                },
                {
                    "code": "HOS-1",
                    "display_name": "Hari Head",
                    "email": "hos1@example.org",
                    "role": "head_of_service",
                },
                {
                    "code": "DIR-1",
                    "display_name": "Dee Director",
                    "email": "dir1@example.org",
                    "role": "director",
                },
            ],
        }
    )


@dataclass
class EngineStack:
    """Handles on a running engine for one test."""

    settings: Settings
    client: Client
    read_model: ReadModel
    sessions: async_sessionmaker[AsyncSession]
    mailbox: Mailbox
    webhooks: WebhookLog

    async def open_referral(self, definition: Definition, case_ref: str, received: date) -> None:
        """Open a case in team T1, allocated to SW-1, with a referral received that day."""
        referral = CaseEvent(
            event_id="r1",
            type="referral_received",
            effective_date=received,
            recorded_at=datetime.now(UTC),
            recorded_by="SW-1",
        )
        await open_case(
            self.client,
            self.settings.temporal.task_queue,
            definition,
            case_ref,
            Allocation(team="T1", worker="SW-1"),
            [referral],
            datetime.now(UTC),
        )


@asynccontextmanager
async def webhook_server(log: WebhookLog) -> AsyncIterator[str]:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        log.posts.append(await request.json())
        return {"ok": "yes"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def engine_stack(base_client: Client, tmp_path: Path) -> AsyncIterator[EngineStack]:
    """Start a read model, SMTP and webhook servers and a worker on a fresh task queue."""
    mailbox, webhooks = Mailbox(), WebhookLog()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/read-model.db"),
        # In Temporal's sandbox, so that a non-deterministic call fails the test.
        temporal=TemporalSettings(task_queue=f"test-{uuid.uuid4()}", workflow_sandbox=True),
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    await upgrade_database_async(settings.database.url)
    engine, sessions = create_engine_and_sessions(settings.database)
    steps = step_writer_for(settings.database.url, sessions)
    config = base_client.config()
    config["data_converter"] = data_converter(settings.encryption)
    client = Client(**config)
    try:
        async with webhook_server(webhooks) as hook_url, httpx.AsyncClient() as http:
            await load_directory(sessions, directory_seed(hook_url))
            read_model = ReadModel(sessions, step_writer=steps)
            worker = build_worker(
                settings, client, read_model, Directory(sessions), AlertPlan(sessions), http
            )
            async with worker:
                yield EngineStack(settings, client, read_model, sessions, mailbox, webhooks)
    finally:
        controller.stop()
        await steps.close()
        await engine.dispose()
