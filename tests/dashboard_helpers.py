"""A dashboard over a real engine, with drifting cases, for the dashboard's tests.

Two services with a team each: T1 (manager TM-1, worker SW-1; from ``engine_stack``) and T2
(manager TM-2, worker SW-2). Cases are opened through Temporal with backdated events, as the
demo does, so their alerts are raised by the real worker at once. Each world names its cases
``<prefix>-<number>`` with a prefix of its own (``world.ref("1001")``), because the Temporal
dev server is shared by the whole session and a case's workflow outlives its world:

- ``1001`` (T1, SW-1): a referral 12 working days old, undecided: escalated to the top.
- ``1002`` (T1, SW-1): an assessment due in 2 working days (a due-soon alert).
- ``1003`` (T1, unallocated): a strategy discussion 4 working days overdue.
- ``1004`` (T1, SW-1): waiting 12 working days for transfer (overdue).
- ``2001`` (T2, SW-2): a referral 12 working days old, undecided.
"""

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from caseclock.api import create_app
from caseclock.calendar import local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.cases import open_case
from caseclock.core.events import CaseEvent
from caseclock.definition.loader import load_definitions
from caseclock.directory import DirectorySeed, load_directory
from caseclock.settings import Settings
from tests.engine_stack import EngineStack, engine_stack, free_port
from tests.helpers import wait_until
from workflows.case_types import Allocation

ROOT = Path(__file__).parents[1]
DEFINITIONS = load_definitions(ROOT / "definitions")
DEFINITION = DEFINITIONS["child-protection@2026.1"]
CALENDAR = build_england_and_wales_calendar(2020, 2035)
TODAY = local_date(datetime.now(UTC))


def wd_ago(days: int) -> date:
    """The working day ``days`` working days before today."""
    return CALENDAR.add_working_days(TODAY, -days)


def second_team() -> DirectorySeed:
    """Service S2 with team T2 (manager TM-2, worker SW-2), beside engine_stack's T1."""
    return DirectorySeed.model_validate(
        {
            "services": [{"code": "S2", "name": "Service Two", "service_manager": "SM-2"}],
            "teams": [{"code": "T2", "name": "Team Two", "service": "S2", "manager": "TM-2"}],
            "staff": [
                {
                    "code": "TM-2",
                    "display_name": "Tom Manager",
                    "email": "tm2@example.org",
                    "role": "team_manager",
                    "team": "T2",
                },
                {
                    "code": "SW-2",
                    "display_name": "Sue Worker",
                    "email": "sw2@example.org",
                    "role": "social_worker",
                    "team": "T2",
                },
                {
                    "code": "SM-2",
                    "display_name": "Sid Service",
                    "email": "sm2@example.org",
                    "role": "service_manager",
                },
            ],
        }
    )


async def open_drifting_case(
    stack: EngineStack,
    case_ref: str,
    team: str,
    worker: str | None,
    events: list[tuple[date, str, str | None]],
) -> None:
    """Open a case with backdated events (day, type, outcome); its alerts follow at once."""
    now = datetime.now(UTC)
    await open_case(
        stack.client,
        stack.settings.temporal.task_queue,
        DEFINITION,
        case_ref,
        Allocation(team=team, worker=worker),
        [
            CaseEvent(
                event_id=f"{case_ref}-{index}",
                type=kind,
                effective_date=day,
                recorded_at=now,
                recorded_by=worker or "TM-1",
                outcome=outcome,
            )
            for index, (day, kind, outcome) in enumerate(events, start=1)
        ],
        now,
    )


def late_referral(days: int = 12) -> list[tuple[date, str, str | None]]:
    """A referral received ``days`` working days ago and never decided."""
    return [(wd_ago(days), "referral_received", None)]


CASES: dict[str, tuple[str, str | None, list[tuple[date, str, str | None]]]] = {
    "1001": ("T1", "SW-1", late_referral()),
    "1002": (
        "T1",
        "SW-1",
        [(wd_ago(43), "referral_received", None), (wd_ago(42), "referral_decision", "assessment")],
    ),
    "1003": (
        "T1",
        None,
        [(wd_ago(4), "referral_received", None), (wd_ago(4), "significant_harm_concern", None)],
    ),
    "1004": (
        "T1",
        "SW-1",
        [
            (wd_ago(30), "referral_received", None),
            (wd_ago(29), "referral_decision", "assessment"),
            (wd_ago(12), "transfer_requested", None),
        ],
    ),
    "2001": ("T2", "SW-2", late_referral()),
}


# The cases whose alerts reach T1's team manager at once.
WITH_ALERTS = ("1001", "1003", "1004")


@dataclass
class DashboardWorld:
    """A running engine with the cases above, and the API app serving the dashboard."""

    stack: EngineStack
    app: FastAPI
    prefix: str

    def ref(self, number: str) -> str:
        """This world's reference for a case number, e.g. ``DA1B2C3-1001``."""
        return f"{self.prefix}-{number}"

    def client(self) -> httpx.AsyncClient:
        """An HTTP client on the app, in memory (no JavaScript, like any plain browser)."""
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://dashboard.test")

    async def inbox_keys(self, staff_code: str) -> list[str]:
        """The open alerts in someone's inbox, by key."""
        items = await self.stack.read_model.inbox(staff_code)
        return [item.escalation.key for item in items if item.escalation.is_open]


@asynccontextmanager
async def dashboard_world(
    client: Client, tmp_path: Path, settings: Settings | None = None
) -> AsyncIterator[DashboardWorld]:
    """The engine, the second team, the cases opened and their first alerts arrived."""
    async with engine_stack(client, tmp_path) as stack:
        await load_directory(stack.sessions, second_team())
        world = DashboardWorld(
            stack=stack,
            app=create_app(settings or stack.settings, stack.client, stack.sessions, DEFINITIONS),
            prefix=f"D{secrets.token_hex(3).upper()}",
        )
        for number, (team, worker, events) in CASES.items():
            await open_drifting_case(stack, world.ref(number), team, worker, events)

        async def arrived() -> bool:
            tm1, tm2 = await world.inbox_keys("TM-1"), await world.inbox_keys("TM-2")
            return all(
                any(k.startswith(world.ref(n) + "/") for k in tm1) for n in WITH_ALERTS
            ) and any(key.startswith(world.ref("2001") + "/") for key in tm2)

        await wait_until(arrived, timeout=20, message="the cases' first alerts")
        yield world


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free loopback port, as ``caseclock api`` does."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def dev_sign_in(http: httpx.AsyncClient, staff_code: str) -> httpx.Response:
    """Sign in with the development sign-in form, as a browser without JavaScript would."""
    page = await http.get("/sign-in")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return await http.post(
        "/sign-in/dev", data={"form_token": token.group(1), "staff_code": staff_code, "next": "/"}
    )


def csrf_of(html: str) -> str:
    """The session's CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)
