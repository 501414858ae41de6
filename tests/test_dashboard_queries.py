"""The dashboard's read-model queries on SQLite and PostgreSQL: work lists, waiting cases,
colleagues to reassign to, and reassignment.
"""

from datetime import UTC, date, datetime, timedelta

import pytest

from caseclock.core.actions import (
    AlertState,
    ClockSnapshot,
    ClockStatus,
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
    RecordStageAction,
)
from caseclock.core.deadline import Deadline
from caseclock.dashboard import queries as dashboard_queries
from caseclock.dashboard.queries import (
    REASSIGN_ACTION,
    UNALLOCATED,
    DashboardQueries,
    WorkFilter,
)
from caseclock.db.oversight import Scope
from caseclock.db.read_model import ReadModel
from caseclock.directory import DirectorySeed, load_directory
from caseclock.units import Counting, Unit
from tests.db_fixtures import Database, database, unique

__all__ = ["database"]

NOW = datetime.now(UTC)
OPENED = date(2026, 3, 2)


def deadline(due_at: datetime, clock_id: str) -> Deadline:
    return Deadline(
        rule_id=clock_id,
        rule_title=clock_id,
        definition_id="child-protection",
        definition_version="2026.1",
        start_event_type="referral_received",
        start_event_id="e1",
        start_date=OPENED,
        amount=15,
        unit=Unit.WORKING_DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="test",
        due_date=due_at.date(),
        due_at=due_at,
    )


class World:
    """Cases written straight into the read model, as the worker's activities would."""

    def __init__(self, db: Database) -> None:
        self.model = ReadModel(db.sessions)
        self.queries = DashboardQueries(db.sessions)
        self.team = unique("T")

    async def case(
        self, worker: str | None = "SW-1", team: str | None = None, stage: str = "assessment"
    ) -> str:
        ref = unique("Q")
        await self.model.upsert_case(
            ref, "child-protection", "2026.1", team or self.team, worker, OPENED
        )
        await self.model.record_stage(
            RecordStageAction(
                case_ref=ref, track="main", stage=stage, entered_on=OPENED, event_id="e1"
            )
        )
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

    async def alert(self, ref: str, level: int, name: str, clock_id: str = "assessment") -> str:
        action = NotifyAction(
            key=f"{ref}/{clock_id}/1/{level}",
            case_ref=ref,
            clock_id=clock_id,
            clock_title=clock_id.title(),
            occurrence=1,
            level=level,
            level_name=name,
            covers_levels=(level,),
            roles=("team_manager",),
            state=AlertState.OVERDUE,
            fire_at=NOW,
            deadline=deadline(NOW, clock_id),
            what_to_do="Act.",
        )
        await self.model.record_escalation(action)
        return action.key


async def test_work_lists_drift_in_scope_most_urgent_first(database: Database) -> None:
    world = World(database)
    escalated, soon, later, met = [await world.case() for _ in range(4)]
    other_team = await world.case(team=unique("T"))
    await world.clock(escalated, -timedelta(days=9), levels=(1, 2, 3))
    await world.alert(escalated, 3, "head_of_service")
    await world.clock(soon, timedelta(days=3))
    await world.clock(later, timedelta(days=60))  # not due soon, no warning: not listed
    await world.clock(met, -timedelta(days=1), status=ClockStatus.MET)
    await world.clock(other_team, -timedelta(days=1))
    scope = Scope(teams=frozenset({world.team}))
    rows = (await world.queries.work(scope, WorkFilter(), NOW)).rows
    assert [row.case_ref for row in rows] == [escalated, soon]
    assert (rows[0].overdue, rows[0].level, rows[0].level_name) == (True, 3, "head_of_service")
    assert (rows[1].overdue, rows[1].level, rows[1].stage) == (False, None, "assessment")
    # A warning already sent makes a far deadline "due soon".
    await world.clock(later, timedelta(days=60), levels=(0,))
    assert later in [
        row.case_ref for row in (await world.queries.work(scope, WorkFilter(), NOW)).rows
    ]


async def test_work_comes_a_page_at_a_time_with_counts_over_every_page(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_queries, "PAGE_SIZE", 3)
    world = World(database)
    refs = [await world.case() for _ in range(8)]
    hours = timedelta(hours=1)
    # Overdue: escalated to level 3; level 2 acknowledged (level 1 not, but it is not the
    # highest); only the overdue warning; nothing sent. Then not yet overdue: escalated
    # to level 2 though due in 40 days; warned; due in 2 days; due in 5 days.
    await world.clock(refs[0], -40 * hours, levels=(3,))
    await world.alert(refs[0], 3, "head_of_service")
    await world.clock(refs[1], -30 * hours, levels=(1, 2))
    await world.alert(refs[1], 1, "team_manager")
    await world.model.acknowledge(await world.alert(refs[1], 2, "service_manager"), "TM-1", "Ok.")
    await world.clock(refs[2], -20 * hours, levels=(1,))
    await world.alert(refs[2], 1, "overdue")
    await world.clock(refs[3], -10 * hours)
    await world.clock(refs[7], timedelta(days=40), levels=(2,))
    await world.alert(refs[7], 2, "service_manager")
    await world.clock(refs[6], timedelta(days=40), levels=(0,))
    await world.alert(refs[6], 0, "due_soon")
    await world.clock(refs[4], timedelta(days=2))
    await world.clock(refs[5], timedelta(days=5))
    scope = Scope(teams=frozenset({world.team}))

    pages = [await world.queries.work(scope, WorkFilter(), NOW, number) for number in (1, 2, 3)]

    listed = [row for page in pages for row in page.rows]
    assert [row.case_ref for row in listed] == [refs[i] for i in (0, 1, 2, 3, 7, 6, 4, 5)]
    assert sorted(listed, key=lambda row: row.urgency) == listed
    assert [len(page.rows) for page in pages] == [3, 3, 2]
    assert [page.page for page in pages] == [1, 2, 3]
    for page in pages:
        # Escalated and not acknowledged: refs 0 and 7 (ref 1's highest is acknowledged,
        # refs 2 and 6 were only warned).
        assert (page.total, page.overdue, page.due_soon, page.escalated) == (8, 4, 4, 2)
        assert page.pages == 3
    assert (pages[1].first_row, pages[1].last_row) == (4, 6)
    assert (listed[1].level, listed[1].level_name, listed[1].acknowledged) == (
        2,
        "service_manager",
        True,
    )
    assert listed[4].title == "Assessment"
    assert listed[4].in_hours is False
    # A page past the end is the last one; before the first, the first.
    past = await world.queries.work(scope, WorkFilter(), NOW, 9)
    assert (past.page, past.rows) == (3, pages[2].rows)
    assert (await world.queries.work(scope, WorkFilter(), NOW, 0)).rows == pages[0].rows
    # Filters narrow the counts as well as the rows.
    other = await world.case(stage="strategy")
    await world.clock(other, -hours)
    narrowed = await world.queries.work(scope, WorkFilter(stage="strategy"), NOW)
    assert (narrowed.total, narrowed.overdue, [r.case_ref for r in narrowed.rows]) == (
        1,
        1,
        [other],
    )
    empty = await world.queries.work(Scope(teams=frozenset({unique("T")})), WorkFilter(), NOW)
    assert (empty.total, empty.rows, empty.pages, empty.first_row) == (0, (), 1, 0)


async def test_work_filters_by_team_worker_stage_and_clock(database: Database) -> None:
    world = World(database)
    mine = await world.case(worker="SW-9", stage="s47")
    nobody = await world.case(worker=None, stage="referral")
    await world.clock(mine, timedelta(days=1), clock_id="icpc")
    await world.clock(nobody, -timedelta(days=1), clock_id="referral_decision")
    scope = Scope(teams=frozenset({world.team}))

    async def refs(**where: str) -> set[str]:
        found = await world.queries.work(scope, WorkFilter(**where), NOW)
        return {row.case_ref for row in found.rows}

    assert await refs() == {mine, nobody}
    assert await refs(worker="SW-9") == {mine}
    assert await refs(worker=UNALLOCATED) == {nobody}
    assert await refs(stage="referral") == {nobody}
    assert await refs(clock="icpc") == {mine}
    assert await refs(team=unique("T")) == set()
    # A practitioner's scope is the cases allocated to them.
    practitioner = Scope(workers=frozenset({"SW-9"}))
    assert {
        r.case_ref for r in (await world.queries.work(practitioner, WorkFilter(), NOW)).rows
    } == {mine}


async def test_unallocated_cases_wait_from_their_first_event(database: Database) -> None:
    world = World(database)
    ref = await world.case(worker=None)
    bare = await world.case(worker=None)
    await world.case(worker="SW-1")
    await world.model.record_event(
        RecordEventAction(
            case_ref=ref,
            event_id="e1",
            event_type="referral_received",
            effective_date=date(2026, 1, 5),
            effective_at=None,
            recorded_at=NOW,
            recorded_by="SW-1",
        )
    )
    found = await world.queries.unallocated(Scope(teams=frozenset({world.team})), None)
    assert [(item.case.case_ref, item.since) for item in found] == [
        (ref, date(2026, 1, 5)),
        (bare, OPENED),
    ]


async def test_cases_waiting_for_transfer_since_the_request(database: Database) -> None:
    world = World(database)
    waiting, moved = await world.case(), await world.case()
    for ref in (waiting, moved):
        await world.model.record_stage(
            RecordStageAction(
                case_ref=ref,
                track="allocation",
                stage="awaiting_transfer",
                entered_on=date(2026, 4, 1),
                event_id="t1",
            )
        )
    await world.model.record_stage(
        RecordStageAction(
            case_ref=moved,
            track="allocation",
            stage="allocated",
            entered_on=date(2026, 4, 9),
            event_id="t2",
        )
    )
    found = await world.queries.awaiting_transfer(Scope(everything=True), world.team)
    assert [(item.case.case_ref, item.since) for item in found] == [(waiting, date(2026, 4, 1))]


async def test_colleagues_are_the_line_and_their_cover_and_reassigning_moves_the_alert(
    database: Database,
) -> None:
    s = unique("")
    seed = DirectorySeed.model_validate(
        {
            "services": [
                {
                    "code": f"S{s}",
                    "name": "S",
                    "service_manager": f"SM{s}",
                    "head_of_service": f"HOS{s}",
                }
            ],
            "teams": [{"code": f"T{s}", "name": "T", "service": f"S{s}", "manager": f"TM{s}"}],
            "staff": [
                {"code": f"{code}{s}", "display_name": code, "email": "x@example.org", "role": role}
                for code, role in [
                    ("TM", "team_manager"),
                    ("SM", "service_manager"),
                    ("HOS", "head_of_service"),
                    ("CV", "team_manager"),
                ]
            ],
            "absences": [
                {
                    "staff": f"SM{s}",
                    "starts_on": "2026-01-01",
                    "ends_on": "2026-01-31",
                    "cover": f"CV{s}",
                }
            ],
        }
    )
    await load_directory(database.sessions, seed)
    world = World(database)
    found = await world.queries.colleagues(f"T{s}", date(2026, 1, 15))
    assert [(c.code, c.role, c.covering_for) for c in found] == [
        (f"TM{s}", "team_manager", None),
        (f"SM{s}", "service_manager", None),
        (f"HOS{s}", "head_of_service", None),
        (f"CV{s}", "team_manager", f"SM{s}"),
    ]
    assert len(await world.queries.colleagues(f"T{s}", date(2026, 2, 15))) == 3
    assert await world.queries.colleagues("NO-SUCH-TEAM", date(2026, 2, 15)) == []

    ref = await world.case(team=f"T{s}")
    key = await world.alert(ref, 1, "overdue")
    await world.model.add_inbox_item(f"TM{s}", key)
    await world.queries.reassign(key, f"TM{s}", f"SM{s}")
    await world.queries.reassign(key, f"TM{s}", f"SM{s}")  # again: nothing more happens
    assert [i.escalation.key for i in await world.model.inbox(f"TM{s}")] == []
    assert [i.escalation.key for i in await world.model.inbox(f"SM{s}")] == [key]
    await world.model.write_audit(
        f"TM{s}", REASSIGN_ACTION, ref, {"key": key, "from_staff": f"TM{s}", "to_staff": f"SM{s}"}
    )
    moved = await world.queries.reassignments(ref)
    assert [(m.key, m.from_staff, m.to_staff) for m in moved] == [(key, f"TM{s}", f"SM{s}")]
    names = await world.queries.staff_names()
    assert names[f"HOS{s}"] == "HOS"
