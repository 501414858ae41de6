"""Leaders' measures over a real, migrated read model (SQLite and PostgreSQL).

Every expected figure is worked out by hand from the rows each test writes.
"""

import secrets
from datetime import UTC, date, datetime, time, timedelta

import pytest

from caseclock.calendar import end_of_day
from caseclock.core.actions import (
    AlertState,
    ClockSnapshot,
    ClockStatus,
    NotifyAction,
    RecordClockAction,
)
from caseclock.core.deadline import Deadline
from caseclock.db.performance import MEASURES, Performance, to_csv
from caseclock.db.read_model import ReadModel
from caseclock.units import Counting, Unit
from tests.db_fixtures import Database, database, unique

__all__ = ["database"]


def deadline(clock_id: str, start: date, due: date) -> Deadline:
    return Deadline(
        rule_id=clock_id,
        rule_title=clock_id,
        definition_id="child-protection",
        definition_version="2026.1",
        start_event_type="start",
        start_event_id="e1",
        start_date=start,
        amount=1,
        unit=Unit.DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="test",
        due_date=due,
        due_at=end_of_day(due),
    )


class Writer:
    def __init__(self, read_model: ReadModel, team: str) -> None:
        self.read_model, self.team = read_model, team
        self.cases: list[str] = []

    async def case(self) -> str:
        ref = unique("PERF")
        await self.read_model.upsert_case(
            ref, "child-protection", "2026.1", self.team, "SW-1", date(2024, 1, 1)
        )
        self.cases.append(ref)
        return ref

    async def clock(
        self,
        clock_id: str,
        start: date,
        due: date,
        status: ClockStatus,
        closed: date | None = None,
        occurrence: int = 1,
    ) -> str:
        ref = await self.case()
        snapshot = ClockSnapshot(
            clock_id=clock_id,
            clock_title=clock_id,
            occurrence=occurrence,
            status=status,
            deadline=deadline(clock_id, start, due),
            closed_on=closed,
        )
        await self.read_model.record_clock(RecordClockAction(case_ref=ref, clock=snapshot))
        return ref


@pytest.fixture
def teams() -> tuple[str, str]:
    return unique("TA"), unique("TB")


async def test_timeliness_by_team_and_month(database: Database, teams: tuple[str, str]) -> None:
    team_a, team_b = teams
    writer = Writer(ReadModel(database.sessions), team_a)
    met, late = ClockStatus.MET, ClockStatus.MET_LATE
    # January 2025, team A: three ICPCs held, two in time -> 2/3 = 66.7%.
    await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), met, date(2025, 1, 15))
    await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), met, date(2025, 1, 20))
    await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), late, date(2025, 1, 21))
    # Not held (running, or cancelled): not counted.
    await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), ClockStatus.RUNNING)
    await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), ClockStatus.CANCELLED)
    # February: one, in time -> 100%.
    await writer.clock("icpc", date(2025, 2, 2), date(2025, 2, 20), met, date(2025, 2, 3))
    # Team B's ICPC is not team A's.
    other = Writer(writer.read_model, team_b)
    await other.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), late, date(2025, 1, 28))
    # Care proceedings issued Mon 2024-07-01: 26 weeks beginning with that day end Sun
    # 2024-12-29. One concludes on the 29th (within), one on the 30th (not): 1/2 = 50%.
    for closed in (date(2024, 12, 29), date(2024, 12, 30)):
        await writer.clock("care_proceedings", date(2024, 7, 1), date(2024, 12, 29), met, closed)
    # PLO letter Mon 2024-09-02; decided Mon 2024-12-23, 112 days = 16 weeks later: within.
    await writer.clock(
        "pre_proceedings_decision", date(2024, 9, 2), date(2024, 12, 23), met, date(2024, 12, 23)
    )

    rows = await Performance(database.sessions).report(
        date(2024, 12, 1), date(2025, 2, 28), teams=[team_a]
    )
    figures = {(r.measure, r.month): (r.numerator, r.denominator, r.value) for r in rows}
    assert figures[("icpc_within_15_wd", "2025-01")] == (2, 3, 66.7)
    assert figures[("icpc_within_15_wd", "2025-02")] == (1, 1, 100.0)
    assert figures[("proceedings_within_26_weeks", "2024-12")] == (1, 2, 50.0)
    assert figures[("plo_decided_within_16_weeks", "2024-12")] == (1, 1, 100.0)
    assert {r.team for r in rows} == {team_a}


async def test_rows_come_in_pythons_order_of_measure_team_and_month(database: Database) -> None:
    # Sorted by measure, team and month in code points, as sorted() orders the rows, never
    # in the database's collation (en_US, for one, puts "a" before "B" and passes over "-"):
    # team codes mixing case and punctuation, with rows from the monthly counts (alone and
    # summed over several clocks), from clocks' durations and from open plans.
    token = secrets.token_hex(3)
    prefixes = ("b", "B", "a.b", "a-b", "a_b", "ab", "A", "Ab", "aB", "0", "a9", "Z")
    teams = [f"{prefix}-{token}" for prefix in prefixes]
    met, late = ClockStatus.MET, ClockStatus.MET_LATE
    read_model = ReadModel(database.sessions)
    for number, team in enumerate(teams):
        writer = Writer(read_model, team)
        for closed in (date(2025, 2, 3), date(2025, 1, 15)):
            await writer.clock("icpc", date(2025, 1, 2), date(2025, 1, 20), met, closed)
        await writer.clock(
            "review_conferences", date(2025, 1, 2), date(2025, 1, 20), late, date(2025, 1, 22)
        )
        await writer.clock(
            "first_review_conference", date(2025, 1, 2), date(2025, 1, 20), met, date(2025, 1, 9)
        )
        if number % 2:
            await writer.clock(
                "care_proceedings", date(2024, 7, 1), date(2024, 12, 29), met, date(2025, 1, 6)
            )
            await writer.clock(
                "cp_plan_duration", date(2024, 11, 4), date(2026, 5, 4), ClockStatus.RUNNING
            )

    rows = await Performance(database.sessions).report(
        date(2025, 1, 1), date(2025, 2, 28), teams=teams
    )
    assert rows == sorted(rows)
    assert len({row[:3] for row in rows}) == len(rows)
    assert [row.team for row in rows if row.measure == "review_conferences_on_time"] == sorted(
        teams
    )
    assert sorted(teams)[:3] == [f"0-{token}", f"A-{token}", f"Ab-{token}"]
    assert {row.measure for row in rows} == {
        "icpc_within_15_wd",
        "review_conferences_on_time",
        "proceedings_within_26_weeks",
        "cp_plans_over_18_months",
        "cp_plans_over_24_months",
    }
    icpc = [(row.team, row.month) for row in rows if row.measure == "icpc_within_15_wd"]
    assert icpc == [(team, month) for team in sorted(teams) for month in ("2025-01", "2025-02")]
    review = {(row.numerator, row.denominator, row.value) for row in rows if row.team == teams[0]}
    assert (1, 2, 50.0) in review


async def test_plans_open_long_and_repeat_plans(database: Database, teams: tuple[str, str]) -> None:
    team_a, _ = teams
    writer = Writer(ReadModel(database.sessions), team_a)
    running = ClockStatus.RUNNING
    # Open since 2023-06-15: 18 months on 2024-12-15 (passed by the end of January 2025),
    # 24 months on 2025-06-15 (not yet).
    await writer.clock("cp_plan_duration", date(2023, 6, 15), date(2024, 12, 15), running)
    # A second plan for its child started 2025-01-10.
    await writer.clock(
        "cp_plan_duration", date(2025, 1, 10), date(2026, 7, 10), running, occurrence=2
    )
    # Ended in December: not open at the end of January.
    await writer.clock(
        "cp_plan_duration",
        date(2022, 1, 3),
        date(2023, 7, 3),
        ClockStatus.CANCELLED,
        closed=date(2024, 12, 20),
    )
    rows = await Performance(database.sessions).report(
        date(2025, 1, 1), date(2025, 1, 31), teams=[team_a]
    )
    figures = {r.measure: (r.numerator, r.denominator) for r in rows if r.month == "2025-01"}
    assert figures["cp_plans_over_18_months"] == (1, 2)
    assert figures["cp_plans_over_24_months"] == (0, 2)
    assert figures["repeat_cp_plans"] == (1, 1)


async def test_escalations_acknowledged_and_time_to_acknowledge(
    database: Database, teams: tuple[str, str]
) -> None:
    team_a, _ = teams
    clock = [datetime(2025, 3, 3, 9, 0, tzinfo=UTC)]
    read_model = ReadModel(database.sessions, now=lambda: clock[0])
    writer = Writer(read_model, team_a)
    keys = []
    for _ in range(2):
        ref = await writer.case()
        action = NotifyAction(
            key=f"{ref}/icpc/1/1",
            case_ref=ref,
            clock_id="icpc",
            clock_title="ICPC",
            occurrence=1,
            level=1,
            level_name="overdue",
            covers_levels=(1,),
            roles=("team_manager",),
            state=AlertState.OVERDUE,
            fire_at=datetime(2025, 3, 3, tzinfo=UTC),
            deadline=deadline("icpc", date(2025, 2, 10), date(2025, 3, 2)),
            what_to_do="Hold it",
        )
        await read_model.record_escalation(action)
        keys.append(action.key)
    clock[0] += timedelta(hours=3)
    await read_model.acknowledge(keys[0], "TM-1", "Conference booked for Thursday")
    rows = await Performance(database.sessions).report(
        date(2025, 3, 1), date(2025, 3, 31), teams=[team_a]
    )
    figures = {r.measure: (r.numerator, r.denominator, r.value) for r in rows}
    assert figures["escalations_acknowledged"] == (1, 2, 50.0)
    assert figures["hours_to_acknowledge"] == (1, 1, 3.0)
    assert datetime.combine(date(2025, 3, 3), time(12), tzinfo=UTC) == clock[0]


async def test_caseload_per_worker(database: Database, teams: tuple[str, str]) -> None:
    team_a, _ = teams
    writer = Writer(ReadModel(database.sessions), team_a)
    for _ in range(3):
        await writer.case()
    rows = await Performance(database.sessions).caseload(teams=[team_a])
    assert [(r.worker, r.open_cases) for r in rows] == [("SW-1", 3)]


def test_every_measure_is_defined_and_csv_has_a_header() -> None:
    assert len({m.id for m in MEASURES}) == len(MEASURES)
    assert all(m.definition and m.title for m in MEASURES)
    assert to_csv([]).splitlines() == ["measure,team,month,numerator,denominator,value"]
