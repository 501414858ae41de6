"""Scenario 6, history per case: a two-year child protection plan, event by event.

A case runs on the dev server with the real ``CaseWorkflow`` and its real activities (a
SQLite read model and the directory; email off): a referral, a strategy discussion, a
section 47 enquiry and an initial conference that starts a plan, then two years of the
plan: a visit every 10 working days, a core group every 4 weeks (the first within 10
working days), a review at 3 months and every 6 months after. The plan is the last two
years, recorded event by event by update (as the repository's own two-year test does:
update-heavy work belongs on the dev server, where time cannot be skipped), so every
clock occurrence whose rungs are already past raises its alert at once: one alert per
occurrence, about what a plan whose visits fall due-soon before they happen raises in real
time. The case is started as ``open_case`` starts it, with the history limit given. The
history of every run is then fetched, following continue-as-new.

Figures: events recorded, runs, history events and bytes per run (largest) and in total,
for the default ``history_limit`` (2,000 events) and a small one (500) that shows the
bound at work. The floor's history for the same number of updates is given for scale.

Run: ``python -m bench.s6_history --repeats 1``.
"""

import argparse
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from time import time as time_now
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench import rows, scenario
from bench.arms import child_protection
from bench.common import dev_server, directory_seed
from bench.floor import FloorDeadline, FloorInput, RowInput, build_floor_worker
from caseclock.calendar import WorkingCalendar, add_months, local_date
from caseclock.cases import calendar_for, record_event
from caseclock.codec import data_converter
from caseclock.core.events import CaseEvent
from caseclock.db.alert_plan import AlertPlan
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.read_model import ReadModel
from caseclock.devserver import DevServer
from caseclock.directory import Directory, load_directory
from caseclock.logging import configure_logging
from caseclock.search_attributes import DEFINITION_ATTRIBUTE, TEAM_ATTRIBUTE
from caseclock.settings import DatabaseSettings, EncryptionSettings, Settings, TemporalSettings
from worker import build_worker
from workflows.case import CaseWorkflow
from workflows.case_types import Allocation, CaseWorkflowInput, workflow_id_for

NAME = "s6_history"
TITLE = "6. History per case (two-year CP plan)"
DEFAULTS = {"n": 1, "repeats": 1, "arms": ("caseclock", "floor")}
HEADLINE = [
    "events_recorded",
    "runs",
    "history_events_total",
    "history_events_max_run",
    "history_kib_total",
    "history_kib_max_run",
]
LIMITS = (2000, 500)
PLAN_YEARS = 2


def plan_events(start: date, calendar: WorkingCalendar) -> list[tuple[date, str, str | None]]:
    """The case's events in order: the way into a plan, then two years of it."""
    wd = calendar.add_working_days
    s47 = wd(start, 5)
    icpc = wd(s47, 10)
    events: list[tuple[date, str, str | None]] = [
        (start, "referral_decision", "strategy_discussion"),
        (start, "strategy_discussion_held", "s47"),
        (s47, "s47_concluded", "icpc"),
        (icpc, "icpc_held", "cp_plan"),
    ]
    end = add_months(icpc, 12 * PLAN_YEARS)
    visit = wd(icpc, 10)
    while visit < end:
        events.append((visit, "cp_visit", None))
        visit = wd(visit, 10)
    core_group = wd(icpc, 10)
    while core_group < end:
        events.append((core_group, "core_group_held", None))
        core_group += timedelta(weeks=4)
    review = add_months(icpc, 3)
    while review < end:
        events.append((review, "rcpc_held", "continue"))
        review = add_months(review, 6)
    order = {"referral_decision": 0, "strategy_discussion_held": 1}
    return sorted(events, key=lambda item: (item[0], order.get(item[1], 2)))


@asynccontextmanager
async def engine(server: DevServer, folder: Path) -> AsyncIterator[tuple[Client, str]]:
    """Caseclock's worker (production wiring, in this process) on the dev server; no email."""
    url = f"sqlite+aiosqlite:///{folder}/read-model.db"
    settings = Settings(
        database=DatabaseSettings(url=url),
        temporal=TemporalSettings(task_queue=f"history-{uuid.uuid4().hex[:8]}"),
    )
    await upgrade_database_async(url)
    db_engine, sessions = create_engine_and_sessions(settings.database)
    await load_directory(sessions, directory_seed())
    client = await Client.connect(
        server.address, data_converter=data_converter(EncryptionSettings())
    )
    try:
        async with httpx.AsyncClient() as http:
            worker = build_worker(
                settings,
                client,
                ReadModel(sessions),
                Directory(sessions),
                AlertPlan(sessions),
                http,
            )
            async with worker:
                yield client, settings.temporal.task_queue
    finally:
        await db_engine.dispose()


async def history_of(client: Client, workflow_id: str, first_run: str) -> list[dict[str, int]]:
    """Events and bytes of every run of a workflow, following continue-as-new."""
    runs: list[dict[str, int]] = []
    run_id: str | None = first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(
            {
                "events": len(history.events),
                "bytes": sum(event.ByteSize() for event in history.events),
            }
        )
        last = history.events[-1]
        continued = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        if last.event_type == continued:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        else:
            run_id = None
    return runs


def _history_figures(runs: list[dict[str, int]], recorded: int) -> dict[str, Any]:
    return {
        "events_recorded": recorded,
        "runs": len(runs),
        "history_events_total": sum(run["events"] for run in runs),
        "history_events_max_run": max(run["events"] for run in runs),
        "history_kib_total": round(sum(run["bytes"] for run in runs) / 1024, 1),
        "history_kib_max_run": round(max(run["bytes"] for run in runs) / 1024, 1),
        "per_run": runs,
    }


async def caseclock(limit: int, folder: Path) -> dict[str, Any]:
    """The last two years of a plan on one case, with the given history limit."""
    definition = child_protection()
    now = datetime.now(UTC)
    today = local_date(now)
    start = add_months(today, -12 * PLAN_YEARS) - timedelta(days=30)
    calendar = calendar_for(start, today)
    events = [item for item in plan_events(start, calendar) if item[0] <= today]
    async with (
        dev_server(folder / "temporal") as server,
        engine(server, folder) as (
            client,
            task_queue,
        ),
    ):
        ref = f"HIST-{limit}"
        referral = CaseEvent(
            event_id="e0",
            type="referral_received",
            effective_date=start,
            recorded_at=now,
            recorded_by="SW-1",
        )
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            CaseWorkflow.run,
            CaseWorkflowInput(
                case_ref=ref,
                allocation=Allocation(team="T1", worker="SW-1"),
                definition=definition,
                calendar=calendar,
                initial_events=[referral],
                history_limit=limit,
            ),
            id=workflow_id_for(ref),
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(
                        DEFINITION_ATTRIBUTE, f"{definition.id}@{definition.version}"
                    ),
                    SearchAttributePair(TEAM_ATTRIBUTE, "T1"),
                ]
            ),
        )
        first_run = handle.first_execution_run_id or handle.result_run_id or ""
        for number, (day, event_type, outcome) in enumerate(events, start=1):
            event = CaseEvent(
                event_id=f"e{number}",
                type=event_type,
                effective_date=day,
                recorded_at=datetime.now(UTC),
                recorded_by="SW-1",
                outcome=outcome,
            )
            await record_event(client, ref, event)
        runs = await history_of(client, workflow_id_for(ref), first_run)
        return _history_figures(runs, len(events) + 1)


async def floor(updates: int, folder: Path) -> dict[str, Any]:
    """The floor's history for the same number of updates and one alert."""
    rows_db = folder / "rows.db"
    rows.connect(rows_db).close()
    async with dev_server(folder / "temporal") as server:
        client = await Client.connect(server.address)
        task_queue = f"floor-{uuid.uuid4().hex[:8]}"
        async with build_floor_worker(client, task_queue, rows_db, tuned=False):
            handle = await client.start_workflow(
                FloorDeadline.run,
                FloorInput(key="HIST", due_epoch=time_now() + 3600),
                id="floor/HIST",
                task_queue=task_queue,
            )
            for number in range(updates):
                await handle.execute_update(FloorDeadline.event, RowInput("event", f"{number}"))
            await handle.signal(FloorDeadline.met)
            runs = await history_of(client, "floor/HIST", handle.result_run_id or "")
            return _history_figures(runs, updates)


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition: each history limit, then the floor with as many updates."""
    configure_logging("WARNING")  # the worker runs in this process: keep the table readable
    arms = args.arms.split(",")
    found: dict[str, dict[str, Any]] = {}
    recorded = 0
    if "caseclock" in arms:
        for limit in LIMITS:
            work = Path(tempfile.mkdtemp(dir=folder))
            name = "caseclock" if limit == LIMITS[0] else f"caseclock (history_limit={limit})"
            found[name] = await caseclock(limit, work)
            recorded = found[name]["events_recorded"]
    if "floor" in arms:
        found["floor"] = await floor(recorded or 80, folder)
    return found


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
