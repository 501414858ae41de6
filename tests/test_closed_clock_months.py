"""The monthly counts of met clocks stay exactly what the clocks say, on SQLite and PostgreSQL.

``closed_clock_months`` is kept by triggers on ``clocks`` (migration 0006). Every test here
changes clocks through the read model's own writes (or plain SQL, as any other writer
would) and compares the counts with the same figures worked out afresh from ``clocks``:
a late-recorded event that moves a clock's closing day into another month, a clock met
late instead of on time, reopened, moved to another team with its case, or deleted. The
migration's filling of the counts from clocks already there is checked too.
"""

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from alembic import command
from sqlalchemy import delete, func, select

from caseclock.core.actions import ClockSnapshot, ClockStatus, RecordClockAction
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import alembic_config
from caseclock.db.models import Clock, ClosedClockMonth
from caseclock.db.performance import Performance
from caseclock.db.read_model import ReadModel
from caseclock.settings import DatabaseSettings
from tests.db_fixtures import Database, database, throwaway_postgres, unique
from tests.test_performance import deadline

__all__ = ["database"]

MET, LATE = ClockStatus.MET, ClockStatus.MET_LATE
BEFORE = "0005"  # the revision migration 0006 follows
Counts = dict[tuple[str, str, str], tuple[int, int]]


async def counted(db: Database, teams: set[str]) -> Counts:
    """The non-zero monthly counts of these teams, as the triggers kept them."""
    query = select(
        ClosedClockMonth.clock_id,
        ClosedClockMonth.month,
        ClosedClockMonth.team_code,
        ClosedClockMonth.met,
        ClosedClockMonth.met_late,
    ).where(ClosedClockMonth.team_code.in_(teams))
    async with db.sessions() as session:
        rows = (await session.execute(query)).all()
    return {(c, m, t): (met, late) for c, m, t, met, late in rows if met or late}


async def recounted(db: Database, teams: set[str]) -> Counts:
    """The same counts worked out afresh from the clocks."""
    query = select(Clock.clock_id, Clock.closed_on, Clock.team_code, Clock.status).where(
        Clock.team_code.in_(teams),
        Clock.status.in_((MET.value, LATE.value)),
        Clock.closed_on.is_not(None),
    )
    found: dict[tuple[str, str, str], list[int]] = {}
    async with db.sessions() as session:
        for clock_id, closed, team, status in (await session.execute(query)).all():
            tally = found.setdefault((clock_id, f"{closed:%Y-%m}", team), [0, 0])
            tally[0 if status == MET.value else 1] += 1
    return {key: (met, late) for key, (met, late) in found.items()}


class Cases:
    """Cases and their clocks written through the read model, as the activities do."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.model = ReadModel(db.sessions)
        self.teams = {unique("MA"), unique("MB")}

    async def case(self, team: str) -> str:
        ref = unique("M")
        await self.model.upsert_case(
            ref, "child-protection", "2026.1", team, None, date(2025, 1, 1)
        )
        return ref

    async def clock(
        self,
        ref: str,
        status: ClockStatus,
        closed: date | None,
        clock_id: str = "icpc",
        occurrence: int = 1,
    ) -> None:
        snapshot = ClockSnapshot(
            clock_id=clock_id,
            clock_title=clock_id,
            occurrence=occurrence,
            status=status,
            deadline=deadline(clock_id, date(2025, 1, 2), date(2025, 1, 20)),
            closed_on=closed if status in (MET, LATE) else None,
        )
        await self.model.record_clock(RecordClockAction(case_ref=ref, clock=snapshot))

    async def check(self) -> Counts:
        """The kept counts, once checked against a recount."""
        kept = await counted(self.db, self.teams)
        assert kept == await recounted(self.db, self.teams)
        return kept


async def test_a_late_event_moves_a_met_clock_into_the_month_it_now_closed_in(
    database: Database,
) -> None:
    cases = Cases(database)
    team, other = sorted(cases.teams)
    ref = await cases.case(team)
    await cases.clock(ref, ClockStatus.RUNNING, None)
    assert await cases.check() == {}
    await cases.clock(ref, MET, date(2025, 3, 31))
    assert await cases.check() == {("icpc", "2025-03", team): (1, 0)}
    # A late-recorded event: the conference was in fact held on 27 February, late.
    await cases.clock(ref, LATE, date(2025, 2, 27))
    assert await cases.check() == {("icpc", "2025-02", team): (0, 1)}
    # The leader's page sees February's count change, and March's go.
    rows = await Performance(database.sessions).report(date(2025, 2, 1), date(2025, 3, 31), [team])
    assert [(r.measure, r.month, r.numerator, r.denominator) for r in rows] == [
        ("icpc_within_15_wd", "2025-02", 0, 1)
    ]
    # Reopened (the meeting event withdrawn): counted nowhere.
    await cases.clock(ref, ClockStatus.RUNNING, None)
    assert await cases.check() == {}
    # Met again, then the case moves team: its past counts go with it, as the clocks' do.
    await cases.clock(ref, MET, date(2025, 2, 10))
    await cases.model.set_allocation(ref, other, "SW-9")
    assert await cases.check() == {("icpc", "2025-02", other): (1, 0)}
    await cases.model.upsert_case(ref, "child-protection", "2026.1", team, None, date(2025, 1, 1))
    assert await cases.check() == {("icpc", "2025-02", team): (1, 0)}


async def test_counts_follow_deletes_and_other_writers(database: Database) -> None:
    cases = Cases(database)
    team, _ = sorted(cases.teams)
    first, second = await cases.case(team), await cases.case(team)
    await cases.clock(first, MET, date(2025, 5, 2))
    await cases.clock(second, MET, date(2025, 5, 9))
    await cases.clock(second, LATE, date(2025, 5, 30), clock_id="assessment")
    assert await cases.check() == {
        ("icpc", "2025-05", team): (2, 0),
        ("assessment", "2025-05", team): (0, 1),
    }
    async with database.sessions.begin() as session:
        await session.execute(delete(Clock).where(Clock.case_ref == second))
    assert await cases.check() == {("icpc", "2025-05", team): (1, 0)}


async def test_counts_stay_exact_through_random_writes(database: Database) -> None:
    rng = random.Random(20261122)
    cases = Cases(database)
    teams = sorted(cases.teams)
    refs = [await cases.case(rng.choice(teams)) for _ in range(4)]
    statuses = [MET, LATE, ClockStatus.RUNNING, ClockStatus.CANCELLED]
    for _ in range(40):
        ref = rng.choice(refs)
        if rng.random() < 0.15:
            await cases.model.set_allocation(ref, rng.choice(teams), None)
        else:
            closed = date(2025, 1, 1) + timedelta(days=rng.randrange(120))
            clock_id = rng.choice(("icpc", "assessment"))
            await cases.clock(ref, rng.choice(statuses), closed, clock_id, rng.randrange(1, 3))
        await cases.check()
    assert await cases.check(), "the random writes met no clock: the test proves nothing"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def url_before(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A new, empty database's URL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('m') / 'before-0006.db'}"
        return
    async with throwaway_postgres() as url:
        yield url


async def test_the_migration_counts_the_clocks_already_there(url_before: str) -> None:
    config = alembic_config(url_before)
    await asyncio.to_thread(command.upgrade, config, BEFORE)
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url_before))
    try:
        db = Database("", url_before, engine, sessions)
        cases = Cases(db)
        team, other = sorted(cases.teams)
        for number, (status, closed) in enumerate(
            [(MET, date(2025, 1, 31)), (LATE, date(2025, 2, 1)), (MET, date(2025, 1, 3))]
        ):
            ref = await cases.case(team if number else other)
            await cases.clock(ref, status, closed)
        await cases.clock(await cases.case(team), ClockStatus.RUNNING, None)
        await asyncio.to_thread(command.upgrade, config, "head")
        expected = {
            ("icpc", "2025-01", other): (1, 0),
            ("icpc", "2025-02", team): (0, 1),
            ("icpc", "2025-01", team): (1, 0),
        }
        assert await cases.check() == expected
        # And the triggers keep them from there on.
        await cases.clock(await cases.case(team), MET, date(2025, 1, 9))
        expected[("icpc", "2025-01", team)] = (2, 0)
        assert await cases.check() == expected
        async with sessions() as session:
            rows = await session.scalar(select(func.count()).select_from(ClosedClockMonth))
        assert rows == len(expected)
    finally:
        await engine.dispose()


async def test_concurrent_writers_in_one_team_and_month_lose_no_count(database: Database) -> None:
    # Each writer adds to the same row of counts; none may overwrite another's.
    cases = Cases(database)
    team, _ = sorted(cases.teams)
    refs = [await cases.case(team) for _ in range(12)]
    await asyncio.gather(
        *(cases.clock(ref, MET, date(2025, 4, 1 + n)) for n, ref in enumerate(refs))
    )
    assert await cases.check() == {("icpc", "2025-04", team): (12, 0)}


async def test_a_measure_of_several_clocks_sums_them_by_team_and_month(database: Database) -> None:
    # Review conferences on time count the first review (born or unborn) and later ones.
    cases = Cases(database)
    team, other = sorted(cases.teams)
    for clock_id, status, closed, where in [
        ("first_review_conference", MET, date(2025, 6, 3), team),
        ("first_review_conference_unborn", LATE, date(2025, 6, 20), team),
        ("review_conferences", MET, date(2025, 6, 30), team),
        ("review_conferences", MET, date(2025, 7, 1), team),
        ("review_conferences", LATE, date(2025, 6, 9), other),
        ("icpc", MET, date(2025, 6, 9), team),
    ]:
        await cases.clock(await cases.case(where), status, closed, clock_id)
    rows = await Performance(database.sessions).report(
        date(2025, 6, 1), date(2025, 7, 31), sorted(cases.teams)
    )
    assert [(r.measure, r.team, r.month, r.numerator, r.denominator, r.value) for r in rows] == [
        ("icpc_within_15_wd", team, "2025-06", 1, 1, 100.0),
        ("review_conferences_on_time", team, "2025-06", 2, 3, 66.7),
        ("review_conferences_on_time", team, "2025-07", 1, 1, 100.0),
        ("review_conferences_on_time", other, "2025-06", 0, 1, 0.0),
    ]
