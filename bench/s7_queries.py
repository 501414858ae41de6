"""Scenario 7, read-model queries over 1,000,000 clocks, on SQLite and on PostgreSQL.

The schema is the real one (``caseclock.db.migrate``: the Alembic migrations, with their
indexes on clocks, among them ``(clock_id, closed_on, status, team_code)`` of migration
0003 and the covering partial ``ix_clocks_running_team_due_cover`` (running clocks by team
and due instant) of 0006, and 0006's monthly counts of met clocks, ``closed_clock_months``,
kept by triggers on clocks). It is filled with ``--n`` clock occurrences (default
1,000,000) on a quarter as many cases in 300 teams of 30 services: 15% running (due from 3
months ago to 3 months ahead), the rest met, met late or cancelled, due over the past two
years. 85% of cases are allocated to one of 12 social workers of their team. The rows are
loaded into the schema of ``LOADED_AT`` (0005, the revision before 0006) and the database is
then migrated to the head, as a deployment's existing database is: 0006 builds its index
and counts the clocks already there. Loading at the head would work too (the triggers
count every row), but the 800,000 updates of 45,000 rows of counts in one bulk transaction
leave PostgreSQL's table of counts many times its size, which no real workload does.
PostgreSQL gets ``VACUUM ANALYZE`` after the load and after the migration (what autovacuum
does after a bulk insert; without it no index-only scan is possible), SQLite ``ANALYZE``.

Scopes are those ``ApiServices.scope`` gives: a manager sees their teams and the cases
allocated to them (their own code, with no cases here), a worker their own cases. After the
load the measuring process sets its collector as the API process does
(``caseclock/api/main.py``: ``gc.collect()`` then ``gc.freeze()``; ``--tuning gc`` leaves
the collector alone; ``--tuning gc10000`` also raises the young generation's threshold to
the worker's 10,000, which made the lists' tails worse), so that a collection does not walk
the objects of the load and of the imported libraries; each query's figures include the
collector's time while it ran
(``<query>_gc_ms``: the longest pause, ``<query>_gcs``: collections).

Queries, each timed ``REPEATS`` times with a random team or measure:

- manager: a team manager's "overdue and due soon" list, through the API's own code
  (``Oversight.clocks`` with the manager's scope, running clocks due before a week from
  now, soonest first, at most 1,000 rows) and the dashboard's (``DashboardQueries.work``:
  the first page of 100, most urgent first, with the counts over the whole list);
- service manager: the dashboard's list for the ten teams of a service;
- worker: the dashboard's list of a social worker's own cases;
- leader: the performance page's figures for a leader, who sees every team
  (``Performance.report``): every measure over the last twelve months and this one, by
  team and month (here 7,800 rows: two timeliness measures, from the monthly counts, for
  300 teams; the synthetic clocks give the other measures nothing to count).

PostgreSQL is the server at ``$CASECLOCK_BENCH_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); a database ``caseclock_bench_<random>``
is created there and dropped afterwards. There is no floor or peer for this scenario.

Run: ``python -m bench.s7_queries --n 1000000 --repeats 1``.
"""

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import scenario
from bench.arms import child_protection
from bench.common import percentile
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.actions import ClockStatus
from caseclock.core.engine import apply_event, start_case
from caseclock.core.events import CaseEvent
from caseclock.dashboard.queries import DashboardQueries, WorkFilter
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import alembic_config, upgrade_database_async
from caseclock.db.oversight import ClockFilter, Oversight, Scope
from caseclock.db.performance import Performance
from caseclock.gc_pauses import YOUNG_THRESHOLD, collect_less_often
from caseclock.settings import DatabaseSettings

NAME = "s7_queries"
TITLE = "7. Read-model queries"
DEFAULTS = {"n": 1_000_000, "repeats": 1, "arms": ("sqlite", "postgres")}
HEADLINE = [
    "work_p50_ms",
    "work_p99_ms",
    "work_service_p50_ms",
    "work_service_p99_ms",
    "work_worker_p50_ms",
    "work_worker_p99_ms",
    "api_clocks_p50_ms",
    "api_clocks_p99_ms",
    "indexed_p50_ms",
    "indexed_p99_ms",
    "leader_p50_ms",
    "leader_p99_ms",
    "load_s",
]
POSTGRES_DSN_ENV = "CASECLOCK_BENCH_POSTGRES_DSN"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TEAMS = 300
SERVICES = 30
WORKERS_PER_TEAM = 12
ALLOCATED_PERCENT = 85
CLOCKS_PER_CASE = 4
REPEATS = 200
TIME_BOX_S = 15.0
MEASURES = ("referral_decision", "assessment", "icpc", "cp_visit", "core_group", "rcpc")
DUE_SOON = timedelta(days=7)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
# The schema the rows are loaded into, before the database is migrated to the head.
LOADED_AT = "0005"


def sample_deadline() -> tuple[str, str]:
    """A real deadline (JSON) and its explanation, from the core, for every synthetic row."""
    definition = child_protection()
    calendar = build_england_and_wales_calendar(2025, 2030)
    event = CaseEvent(
        event_id="r1",
        type="referral_received",
        effective_date=NOW.date(),
        recorded_at=NOW,
        recorded_by="SW-1",
    )
    state = apply_event(definition, start_case(definition, "C1"), event, calendar, NOW).state
    deadline = next(iter(state.clocks.values())).snapshot().deadline
    return json.dumps(deadline.model_dump(mode="json")), deadline.explain()


def team_code(number: int) -> str:
    """The code of team ``number``."""
    return f"T{number:03d}"


def synthetic_clocks(n: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Clock rows: (case_ref, clock, occurrence, team, status, start, due date, due_at, closed)."""
    rng = random.Random(seed)
    for number in range(n):
        case_number = number // CLOCKS_PER_CASE
        team = team_code(case_number % TEAMS)
        clock_id = MEASURES[rng.randrange(len(MEASURES))]
        if rng.random() < 0.15:
            status = ClockStatus.RUNNING.value
            due = NOW + timedelta(days=rng.uniform(-90, 90))
        else:
            status = rng.choices(["met", "met_late", "cancelled"], weights=[80, 17, 3])[0]
            due = NOW - timedelta(days=rng.uniform(1, 730))
        due_at = due.replace(hour=0, minute=0, second=0, microsecond=0)
        start = (due_at - timedelta(days=30)).date()
        closed = None
        if status == "met":
            closed = due_at.date() - timedelta(days=rng.randrange(10))
        elif status == "met_late":
            closed = due_at.date() + timedelta(days=1 + rng.randrange(20))
        yield (
            f"C{case_number:07d}",
            clock_id,
            number % CLOCKS_PER_CASE,
            team,
            status,
            start,
            due_at.date(),
            due_at,
            closed,
        )


def worker_code(team: str, number: int) -> str:
    """The code of social worker ``number`` of ``team``."""
    return f"SW-{team}-{number:02d}"


def synthetic_cases(n: int, seed: int = 5) -> Iterator[tuple[str, str, str | None]]:
    """Case rows: (case_ref, team, allocated worker or None)."""
    rng = random.Random(seed)
    for case_number in range((n + CLOCKS_PER_CASE - 1) // CLOCKS_PER_CASE):
        team = team_code(case_number % TEAMS)
        worker = None
        if rng.randrange(100) < ALLOCATED_PERCENT:
            worker = worker_code(team, rng.randrange(WORKERS_PER_TEAM))
        yield f"C{case_number:07d}", team, worker


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(path: Path, n: int) -> None:
    """Fill the migrated SQLite file in one transaction (the indexes are kept up to date)."""
    connection = sqlite3.connect(path)
    now = _sqlite_time(NOW)
    deadline, explanation = sample_deadline()
    rows = synthetic_clocks(n)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO cases (case_ref, definition_id, definition_version, team_code, "
                "allocated_worker_code, opened_on, current_stages, updated_at) "
                "VALUES (?, 'child-protection', '2026.1', ?, ?, '2025-01-01', '{}', ?)",
                ((ref, team, worker, now) for ref, team, worker in synthetic_cases(n)),
            )
            connection.executemany(
                "INSERT INTO clocks (case_ref, clock_id, occurrence, team_code, title, status, "
                "start_date, due_date, due_at, deadline, explanation, levels_fired, closed_on, "
                "updated_at) VALUES (?, ?, ?, ?, 'Clock', ?, ?, ?, ?, ?, ?, '[]', ?, ?)",
                (
                    (
                        ref,
                        clock,
                        occ,
                        team,
                        status,
                        start.isoformat(),
                        due.isoformat(),
                        _sqlite_time(due_at),
                        deadline,
                        explanation,
                        closed.isoformat() if closed else None,
                        now,
                    )
                    for (ref, clock, occ, team, status, start, due, due_at, closed) in rows
                ),
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def upgrade_to(url: str, revision: str) -> None:
    """Migrate a new database to ``revision`` only."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def vacuum_analyze(url: str) -> None:
    """``VACUUM ANALYZE`` the whole PostgreSQL database."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def load_postgres(url: str, n: int) -> None:
    """Fill the migrated PostgreSQL database with COPY, then VACUUM ANALYZE."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    deadline, explanation = sample_deadline()
    try:
        await connection.copy_records_to_table(
            "cases",
            columns=[
                "case_ref",
                "definition_id",
                "definition_version",
                "team_code",
                "allocated_worker_code",
                "opened_on",
                "current_stages",
                "updated_at",
            ],
            records=[
                (ref, "child-protection", "2026.1", team, worker, date(2025, 1, 1), "{}", NOW)
                for ref, team, worker in synthetic_cases(n)
            ],
        )
        await connection.copy_records_to_table(
            "clocks",
            columns=[
                "case_ref",
                "clock_id",
                "occurrence",
                "team_code",
                "title",
                "status",
                "start_date",
                "due_date",
                "due_at",
                "deadline",
                "explanation",
                "levels_fired",
                "closed_on",
                "updated_at",
            ],
            records=[
                (
                    ref,
                    clock,
                    occ,
                    team,
                    "Clock",
                    status,
                    start,
                    due,
                    due_at,
                    deadline,
                    explanation,
                    "[]",
                    closed,
                    NOW,
                )
                for ref, clock, occ, team, status, start, due, due_at, closed in synthetic_clocks(n)
            ],
        )
        # What autovacuum does after a bulk insert (PostgreSQL 13 and later): statistics, and
        # the visibility map without which an index-only scan still reads every heap page.
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


class GcPauses:
    """The garbage collector's pauses while a query is timed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        """Called by the collector at the start and stop of every collection."""
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._began)


async def _timed(runs: list[float], work: Any) -> None:
    began = time.perf_counter()
    await work
    runs.append(time.perf_counter() - began)


async def time_queries(
    sessions: async_sessionmaker[AsyncSession], freeze: bool = True, young: int | None = None
) -> dict[str, Any]:
    """Time each query up to ``REPEATS`` times or ``TIME_BOX_S`` seconds, whichever is first.

    - ``work``: the dashboard's "My work" for a team manager (one team), through
      ``DashboardQueries.work``: running clocks in scope due soon, overdue or escalated,
      the first page of 100 (most urgent first) with the counts over the whole list;
    - ``work_service``: the same for a service manager (ten teams);
    - ``work_worker``: the same for a social worker (the cases allocated to them);
    - ``api_clocks``: the API's ``GET /clocks?status=running&due_before=+7d`` for one team's
      manager, through ``Oversight.clocks``;
    - ``indexed``: the same list filtered on the clocks' own copy of the team
      (``ClockFilter(team=...)``) with every scope, which ``ix_clocks_running_team_due_cover``
      serves;
    - ``leader``: the performance page for a leader who sees every team, through
      ``Performance.report`` over the last twelve months (every measure, by team and month).
    """
    rng = random.Random(11)
    dashboard = DashboardQueries(sessions)
    oversight = Oversight(sessions)
    performance = Performance(sessions)
    due_soon = ClockFilter(status=ClockStatus.RUNNING, due_before=NOW + DUE_SOON)
    per_service = TEAMS // SERVICES
    first = (NOW - timedelta(days=365)).date().replace(day=1)

    def team_manager() -> Scope:
        # As ApiServices.scope: the manager's teams, and the cases allocated to them.
        team = team_code(rng.randrange(TEAMS))
        return Scope(teams=frozenset({team}), workers=frozenset({f"TM-{team}"}))

    def service_manager() -> Scope:
        service = rng.randrange(SERVICES)
        teams = frozenset(team_code(service + SERVICES * i) for i in range(per_service))
        return Scope(teams=teams, workers=frozenset({f"SM-{service:02d}"}))

    def social_worker() -> Scope:
        team = team_code(rng.randrange(TEAMS))
        return Scope(workers=frozenset({worker_code(team, rng.randrange(WORKERS_PER_TEAM))}))

    def indexed_filter() -> ClockFilter:
        return ClockFilter(
            team=team_code(rng.randrange(TEAMS)),
            status=ClockStatus.RUNNING,
            due_before=NOW + DUE_SOON,
        )

    makers = {
        "work": lambda: dashboard.work(team_manager(), WorkFilter(), NOW),
        "work_service": lambda: dashboard.work(service_manager(), WorkFilter(), NOW),
        "work_worker": lambda: dashboard.work(social_worker(), WorkFilter(), NOW),
        "api_clocks": lambda: oversight.clocks(team_manager(), due_soon, NOW),
        "indexed": lambda: oversight.clocks(Scope(everything=True), indexed_filter(), NOW),
        "leader": lambda: performance.report(first, NOW.date(), None),
    }
    figures: dict[str, Any] = {}
    await oversight.clocks(Scope(everything=True), indexed_filter(), NOW)  # warm the pool
    thresholds = gc.get_threshold()
    if young is not None:
        collect_less_often(young)
    if freeze:
        gc.collect()
        gc.freeze()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        for key, make in makers.items():
            runs: list[float] = []
            pauses.pauses.clear()
            boxed = time.monotonic() + TIME_BOX_S
            while len(runs) < REPEATS and time.monotonic() < boxed:
                await _timed(runs, make())
            figures[f"{key}_p50_ms"] = round(percentile(runs, 50) * 1000, 2)
            figures[f"{key}_p99_ms"] = round(percentile(runs, 99) * 1000, 2)
            figures[f"{key}_runs"] = len(runs)
            figures[f"{key}_gc_ms"] = round(max(pauses.pauses, default=0.0) * 1000, 2)
            figures[f"{key}_gcs"] = len(pauses.pauses)
    finally:
        gc.callbacks.remove(pauses)
        if freeze:
            gc.unfreeze()
        gc.set_threshold(*thresholds)
    figures["gc_frozen"] = int(freeze)
    figures["gc_young_threshold"] = young or thresholds[0]
    return figures


async def sqlite_arm(
    n: int, folder: Path, freeze: bool = True, young: int | None = None
) -> dict[str, Any]:
    """Migrate, fill and query a SQLite file."""
    path = folder / "read-model.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_to(url, LOADED_AT)
    began = time.monotonic()
    load_sqlite(path, n)
    await upgrade_database_async(url)
    connection = sqlite3.connect(path)
    try:
        connection.execute("ANALYZE")
    finally:
        connection.close()
    load_s = time.monotonic() - began
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    try:
        figures = await time_queries(sessions, freeze, young)
    finally:
        await engine.dispose()
    return {**figures, "load_s": round(load_s, 1), "bytes": path.stat().st_size}


@asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[str]:
    """A new database on the PostgreSQL server, dropped afterwards; yields its URL."""
    admin_dsn = os.environ.get(POSTGRES_DSN_ENV, DEFAULT_POSTGRES_DSN)
    name = f"caseclock_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(admin_dsn).set(drivername="postgresql+asyncpg", database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_arm(n: int, freeze: bool = True, young: int | None = None) -> dict[str, Any]:
    """Migrate, fill and query a throwaway PostgreSQL database."""
    async with throwaway_postgres() as url:
        await upgrade_to(url, LOADED_AT)
        began = time.monotonic()
        await load_postgres(url, n)
        await upgrade_database_async(url)
        await vacuum_analyze(url)
        load_s = time.monotonic() - began
        engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
        try:
            return {**await time_queries(sessions, freeze, young), "load_s": round(load_s, 1)}
        finally:
            await engine.dispose()


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition on each backend."""
    arms = args.arms.split(",")
    tuning = args.tuning.split(",")
    freeze = "gc" not in tuning
    young = YOUNG_THRESHOLD if "gc10000" in tuning else None
    found: dict[str, dict[str, Any]] = {}
    if "sqlite" in arms:
        found["sqlite"] = await sqlite_arm(args.n, folder, freeze, young)
    if "postgres" in arms:
        found["postgres"] = await postgres_arm(args.n, freeze, young)
    return found


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
