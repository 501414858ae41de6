"""The read-model queries use the indexes made for them, on SQLite and on PostgreSQL.

Each test runs the real method, catches the SQL it sends (with its parameters), and asks the
database for its plan: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL with
sequential scans priced out (the tables here are tiny, so the planner would otherwise
rightly read them whole; what is checked is that the index *can* serve the query).
"""

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event

from caseclock.core.actions import ClockStatus
from caseclock.dashboard.queries import DashboardQueries, WorkFilter
from caseclock.db.oversight import ClockFilter, Oversight, Scope
from caseclock.db.performance import Performance
from tests.db_fixtures import Database, database

__all__ = ["database"]

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SOON = ClockFilter(status=ClockStatus.RUNNING, due_before=NOW + timedelta(days=7))
MANAGER = Scope(teams=frozenset({"T1"}), workers=frozenset({"TM-1"}))


async def plans(
    db: Database, call: Callable[[], Awaitable[Any]], table: str = "clocks"
) -> list[tuple[str, str]]:
    """Each statement ``call`` sends on ``table``, and the database's plan for it."""
    sent: list[tuple[str, Any]] = []

    def catch(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if f" {table} " in statement or f" {table}\n" in statement:
            sent.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", catch)
    try:
        await call()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", catch)
    found = []
    async with db.engine.connect() as connection:
        for statement, parameters in sent:
            if db.backend == "sqlite":
                rows = await connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters
                )
                plan = "\n".join(str(row[-1]) for row in rows)
            else:
                await connection.exec_driver_sql("SET enable_seqscan = off")
                rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
                plan = "\n".join(str(row[0]) for row in rows)
                await connection.exec_driver_sql("RESET enable_seqscan")
            found.append((statement, plan))
    assert found, f"no statement on {table} was sent"
    return found


def assert_no_clocks_scan(plan: str) -> None:
    assert "SCAN clocks" not in plan  # SQLite: a full scan of the table
    assert "Seq Scan on clocks" not in plan  # PostgreSQL


def assert_clocks_by_team(plan: str) -> None:
    """Clocks are found by team and due instant through one of the team-led indexes."""
    on_sqlite = re.search(
        r"SEARCH clocks USING (COVERING )?INDEX "
        r"ix_clocks_(running_team_due_cover|team_due_status) \(team_code=\? AND due_at<\?\)",
        plan,
    )
    on_postgres = re.search(
        r"Scan using ix_clocks_(running_team_due_cover|team_due_status) on clocks"
        r"[^\n]*\n\s+Index Cond: \(+team_code",
        plan,
    )
    assert on_sqlite or on_postgres, plan


async def test_the_api_clock_list_of_a_team_uses_the_running_clocks_index(
    database: Database,
) -> None:
    oversight = Oversight(database.sessions)
    teams = Scope(teams=frozenset({"T1", "T2"}))
    ((_, plan),) = await plans(database, lambda: oversight.clocks(teams, SOON, NOW))
    assert "ix_clocks_running_team_due_cover" in plan, plan
    assert_clocks_by_team(plan)
    assert_no_clocks_scan(plan)


async def test_the_api_clock_list_of_a_manager_reads_by_team_and_by_own_cases(
    database: Database,
) -> None:
    # Teams and own cases: a union of two indexed branches, never an OR over the table.
    # Without statistics SQLite may take the older covering (team, due, status) index
    # for the team branch; with them (bench s7) it takes the partial one.
    oversight = Oversight(database.sessions)
    ((_, plan),) = await plans(database, lambda: oversight.clocks(MANAGER, SOON, NOW))
    assert_clocks_by_team(plan)
    assert "ix_cases_allocated_worker_code" in plan, plan
    assert_no_clocks_scan(plan)


async def test_a_workers_own_cases_are_found_by_their_allocation(database: Database) -> None:
    oversight = Oversight(database.sessions)
    worker = Scope(workers=frozenset({"SW-1"}))
    ((_, plan),) = await plans(database, lambda: oversight.clocks(worker, SOON, NOW))
    assert "ix_cases_allocated_worker_code" in plan, plan
    assert_no_clocks_scan(plan)


async def test_my_work_reads_a_teams_running_clocks_from_the_covering_index(
    database: Database,
) -> None:
    # The team branch is counted and ordered from the covering partial index alone (on
    # PostgreSQL an index-only scan needs VACUUM, which these tiny tables have not had, so
    # there the index is checked, not the kind of scan); cases are looked up one by one.
    queries = DashboardQueries(database.sessions)
    ((_, plan),) = await plans(database, lambda: queries.work(MANAGER, WorkFilter(), NOW))
    assert "ix_clocks_running_team_due_cover" in plan, plan
    assert "ix_cases_allocated_worker_code" in plan, plan  # the manager's own cases
    assert_no_clocks_scan(plan)
    assert "SCAN cases" not in plan, plan
    assert "Seq Scan on cases" not in plan, plan
    if database.backend == "sqlite":
        assert "SEARCH clocks USING COVERING INDEX ix_clocks_running_team_due_cover" in plan


async def test_the_leaders_measures_read_clocks_by_closing_date(database: Database) -> None:
    # The timeliness measures read the monthly counts (next test); the others read clocks.
    performance = Performance(database.sessions)
    found = await plans(
        database, lambda: performance.report(date(2025, 12, 1), date(2026, 11, 30), None)
    )
    by_closing = [plan for statement, plan in found if "closed_on >=" in statement]
    assert by_closing
    for plan in by_closing:
        assert "ix_clocks_clock_closed" in plan, plan
        assert_no_clocks_scan(plan)


async def test_the_leaders_timeliness_reads_monthly_counts_by_key(database: Database) -> None:
    performance = Performance(database.sessions)
    ((_, plan),) = await plans(
        database,
        lambda: performance.report(date(2025, 12, 1), date(2026, 11, 30), None),
        table="closed_clock_months",
    )
    on_sqlite = re.search(
        r"SEARCH closed_clock_months USING PRIMARY KEY "
        r"\(clock_id=\? AND month>\? AND month<\?\)",
        plan,
    )
    on_postgres = re.search(
        r"Scan using pk_closed_clock_months on closed_clock_months[^\n]*\n\s+"
        r"Index Cond: \(\(\(clock_id\)::text = ANY .* AND \(\(month\)::text >=",
        plan,
    )
    assert on_sqlite or on_postgres, plan


async def test_the_leaders_escalation_measures_read_escalations_by_when_raised(
    database: Database,
) -> None:
    performance = Performance(database.sessions)
    ((_, plan),) = await plans(
        database,
        lambda: performance.report(date(2025, 12, 1), date(2026, 11, 30), None),
        table="escalations",
    )
    assert "ix_escalations_created_at" in plan, plan
    assert "SCAN cases" not in plan, plan
    assert "Seq Scan on cases" not in plan, plan
