"""Scoping of the clock lists on SQLite and PostgreSQL: exactly the clocks in scope.

The API's ``Oversight.clocks`` and the dashboard's ``DashboardQueries.work`` match a
manager's teams on the clocks' own copy of the case's team, and a worker's own cases on the
case's allocation. These tests pin down that the rows are exactly those in scope: a manager
of one team never sees another team's clocks, a worker sees their own cases in any team,
and a case moved to another team moves its clocks with it.
"""

from datetime import UTC, datetime, timedelta

from caseclock.core.actions import ClockSnapshot, ClockStatus, RecordClockAction
from caseclock.dashboard.queries import DashboardQueries, WorkFilter
from caseclock.db.oversight import ClockFilter, Oversight, Scope
from caseclock.db.read_model import ReadModel
from tests.db_fixtures import Database, database, unique
from tests.test_dashboard_queries import OPENED, deadline

__all__ = ["database"]

NOW = datetime.now(UTC)
SOON = ClockFilter(status=ClockStatus.RUNNING, due_before=NOW + timedelta(days=7))


class World:
    """Two teams and two workers, with cases written straight into the read model."""

    def __init__(self, db: Database) -> None:
        self.model = ReadModel(db.sessions)
        self.oversight = Oversight(db.sessions)
        self.queries = DashboardQueries(db.sessions)
        self.team_a, self.team_b = unique("TA"), unique("TB")
        self.worker_a, self.worker_b = unique("SWA"), unique("SWB")

    async def case(self, team: str, worker: str | None, due_in: timedelta, **kw: object) -> str:
        ref = unique("S")
        await self.model.upsert_case(ref, "child-protection", "2026.1", team, worker, OPENED)
        await self.clock(ref, due_in, **kw)  # type: ignore[arg-type]
        return ref

    async def clock(
        self,
        ref: str,
        due_in: timedelta,
        clock_id: str = "assessment",
        status: ClockStatus = ClockStatus.RUNNING,
        levels: tuple[int, ...] = (),
    ) -> None:
        snapshot = ClockSnapshot(
            clock_id=clock_id,
            clock_title=clock_id.title(),
            occurrence=1,
            status=status,
            deadline=deadline(NOW + due_in, clock_id),
            levels_fired=levels,
        )
        await self.model.record_clock(RecordClockAction(case_ref=ref, clock=snapshot))

    async def api(self, scope: Scope, where: ClockFilter = SOON) -> set[str]:
        rows = await self.oversight.clocks(scope, where, NOW)
        keys = [(row.case_ref, row.clock_id, row.occurrence) for row in rows]
        assert len(keys) == len(set(keys)), "a clock listed twice"
        return {row.case_ref for row in rows}

    async def work(self, scope: Scope, where: WorkFilter | None = None) -> set[str]:
        rows = (await self.queries.work(scope, where or WorkFilter(), NOW)).rows
        keys = [(row.case_ref, row.clock_id, row.occurrence) for row in rows]
        assert len(keys) == len(set(keys)), "a clock listed twice"
        return {row.case_ref for row in rows}


async def test_a_manager_of_one_team_sees_exactly_that_teams_clocks(database: Database) -> None:
    world = World(database)
    a_overdue = await world.case(world.team_a, world.worker_a, -timedelta(days=2))
    a_soon = await world.case(world.team_a, None, timedelta(days=3))
    b_overdue = await world.case(world.team_b, world.worker_b, -timedelta(days=2))
    b_soon = await world.case(world.team_b, world.worker_a, timedelta(days=3))

    manager_a = Scope(teams=frozenset({world.team_a}))
    manager_b = Scope(teams=frozenset({world.team_b}))
    assert await world.api(manager_a) == {a_overdue, a_soon}
    assert await world.work(manager_a) == {a_overdue, a_soon}
    assert await world.api(manager_b) == {b_overdue, b_soon}
    assert await world.work(manager_b) == {b_overdue, b_soon}
    # Asking for the other team by filter does not widen the scope.
    assert await world.api(manager_a, ClockFilter(team=world.team_b)) == set()
    assert await world.work(manager_a, WorkFilter(team=world.team_b)) == set()
    both = Scope(teams=frozenset({world.team_a, world.team_b}))
    assert await world.api(both) == {a_overdue, a_soon, b_overdue, b_soon}
    assert await world.work(both) == {a_overdue, a_soon, b_overdue, b_soon}


async def test_a_worker_sees_their_own_cases_in_any_team_and_nobody_elses(
    database: Database,
) -> None:
    world = World(database)
    own_a = await world.case(world.team_a, world.worker_a, -timedelta(days=1))
    own_b = await world.case(world.team_b, world.worker_a, timedelta(days=2))
    await world.case(world.team_a, world.worker_b, timedelta(days=2))
    await world.case(world.team_a, None, timedelta(days=2))

    worker = Scope(workers=frozenset({world.worker_a}))
    assert await world.api(worker) == {own_a, own_b}
    assert await world.work(worker) == {own_a, own_b}
    assert await world.api(Scope(workers=frozenset({unique("SWX")}))) == set()
    assert await world.api(Scope()) == set()
    assert await world.work(Scope()) == set()


async def test_a_manager_with_own_cases_sees_their_team_and_their_own_once(
    database: Database,
) -> None:
    # The API's scope for a manager: their teams, and the cases allocated to them.
    world = World(database)
    team = await world.case(world.team_a, world.worker_b, timedelta(days=1))
    own_elsewhere = await world.case(world.team_b, world.worker_a, timedelta(days=1))
    own_in_team = await world.case(world.team_a, world.worker_a, timedelta(days=1))
    await world.case(world.team_b, world.worker_b, timedelta(days=1))

    scope = Scope(teams=frozenset({world.team_a}), workers=frozenset({world.worker_a}))
    assert await world.api(scope) == {team, own_elsewhere, own_in_team}
    assert await world.work(scope) == {team, own_elsewhere, own_in_team}


async def test_a_case_moved_to_another_team_moves_its_clocks_with_it(database: Database) -> None:
    world = World(database)
    ref = await world.case(world.team_a, world.worker_a, timedelta(days=1))
    await world.clock(ref, -timedelta(days=20), clock_id="icpc", status=ClockStatus.MET)
    manager_a = Scope(teams=frozenset({world.team_a}))
    manager_b = Scope(teams=frozenset({world.team_b}))
    everything = ClockFilter()

    await world.model.set_allocation(ref, world.team_b, world.worker_b)

    assert await world.api(manager_a, everything) == set()
    assert await world.work(manager_a) == set()
    assert await world.api(manager_b, everything) == {ref}
    assert {row.clock_id for row in await world.oversight.clocks(manager_b, everything, NOW)} == {
        "assessment",
        "icpc",
    }
    assert await world.work(manager_b) == {ref}
    assert await world.api(Scope(workers=frozenset({world.worker_a})), everything) == set()
    assert await world.api(Scope(workers=frozenset({world.worker_b})), everything) == {ref}


async def test_filters_keep_their_meaning_with_the_clock_team_scope(database: Database) -> None:
    world = World(database)
    overdue = await world.case(world.team_a, None, -timedelta(days=3))
    soon = await world.case(world.team_a, None, timedelta(days=3))
    later = await world.case(world.team_a, None, timedelta(days=40))
    escalated_later = await world.case(world.team_a, None, timedelta(days=40), levels=(1,))
    met = await world.case(world.team_a, None, -timedelta(days=3), status=ClockStatus.MET)
    scope = Scope(teams=frozenset({world.team_a}))

    assert await world.api(scope) == {overdue, soon}
    assert await world.api(scope, ClockFilter(overdue=True)) == {overdue}
    assert await world.api(scope, ClockFilter(overdue=False)) == {
        soon,
        later,
        escalated_later,
        met,
    }
    assert await world.api(scope, ClockFilter(status=ClockStatus.MET)) == {met}
    assert await world.api(scope, ClockFilter(due_after=NOW)) == {soon, later, escalated_later}
    # My work: running, and due within a week or already escalated.
    assert await world.work(scope) == {overdue, soon, escalated_later}
    rows = (await world.queries.work(scope, WorkFilter(), NOW)).rows
    assert rows[0].case_ref == overdue
    assert {row.case_ref: row.overdue for row in rows}[soon] is False


async def test_closed_cases_are_left_out_of_my_work(database: Database) -> None:
    world = World(database)
    open_ = await world.case(world.team_a, None, timedelta(days=1))
    closed = await world.case(world.team_a, None, timedelta(days=1))
    await world.model.close_case(closed, NOW.date())
    assert await world.work(Scope(teams=frozenset({world.team_a}))) == {open_}
