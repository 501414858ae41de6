"""The planned-alerts tables: plans replace only the future, stale plans lose, the sweep is
woken only when a plan falls due before its next look, and settling records outcomes.

Every test runs on SQLite and on PostgreSQL (see ``tests/db_fixtures.py``).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from caseclock.core.actions import (
    ClockSnapshot,
    ClockStatus,
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
)
from caseclock.db.alert_plan import SWEEP_OVERDUE, AlertPlan, PlanStatus, Settlement
from caseclock.db.models import AlertSweepState, Clock, PlannedAlert
from caseclock.db.read_model import CaseOpening, ReadModel
from caseclock.db.step_writer import CallAsync, step_writer_for
from tests import db_fixtures
from tests.db_fixtures import Database
from tests.test_read_model import deadline, new_case, notify

T = datetime(2026, 3, 20, 0, 0, tzinfo=UTC)
database = db_fixtures.database  # every test here runs on SQLite and on PostgreSQL


def at(action: NotifyAction, when: datetime) -> NotifyAction:
    return action.model_copy(update={"fire_at": when})


class Wakes:
    """Records each time the plan asks for the sweep to be woken."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []

    async def __call__(self, due: datetime) -> None:
        self.calls.append(due)


@pytest.fixture
def plan(database: Database) -> AlertPlan:
    return AlertPlan(database.sessions)


@pytest_asyncio.fixture
async def model(database: Database) -> AsyncIterator[ReadModel]:
    """The read model as the worker builds it: steps on a thread of their own on SQLite."""
    steps = step_writer_for(database.url, database.sessions)
    yield ReadModel(database.sessions, step_writer=steps)
    await steps.close()


async def statuses(database: Database, case_ref: str) -> dict[str, str]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(PlannedAlert.key, PlannedAlert.status).where(PlannedAlert.case_ref == case_ref)
        )
        return dict(rows.all())


async def set_next_wake(database: Database, plan: AlertPlan, when: datetime | None) -> None:
    await plan.schedule_next_wake(T, timedelta(days=365))  # creates the row
    async with database.sessions.begin() as session:
        await session.execute(update(AlertSweepState).values(next_wake_at=when))


async def test_a_new_plan_replaces_the_future_and_keeps_what_is_already_due(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    case_ref = await new_case(model)
    past, soon, later = (
        at(notify(case_ref, 1), T - timedelta(hours=1)),
        at(notify(case_ref, 2), T + timedelta(days=1)),
        at(notify(case_ref, 3), T + timedelta(days=2)),
    )
    await plan.replace_plan(case_ref, 1, T - timedelta(days=1), [past, soon, later], Wakes())
    # At T the case meets its clock: the future rungs go, the one already due stays.
    assert await plan.replace_plan(case_ref, 2, T, [], Wakes())
    assert await statuses(database, case_ref) == {past.key: PlanStatus.PLANNED}


async def test_an_older_plan_never_overwrites_a_newer_one(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    case_ref = await new_case(model)
    newer = at(notify(case_ref, 2), T + timedelta(days=3))
    older = at(notify(case_ref, 1), T + timedelta(days=1))
    assert await plan.replace_plan(case_ref, 20, T, [newer], Wakes())
    # A retry of an earlier write that arrives late changes nothing.
    assert not await plan.replace_plan(case_ref, 10, T, [older], Wakes())
    assert await statuses(database, case_ref) == {newer.key: PlanStatus.PLANNED}
    # The same version again (a retried activity) is applied, and is idempotent.
    assert await plan.replace_plan(case_ref, 20, T, [newer], Wakes())
    assert await statuses(database, case_ref) == {newer.key: PlanStatus.PLANNED}


async def test_the_sweep_is_woken_only_by_a_plan_due_before_its_next_look(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    await set_next_wake(database, plan, T + timedelta(days=5))
    wakes = Wakes()
    first, second, third = [await new_case(model) for _ in range(3)]
    monday = T + timedelta(days=3)
    # Thousands of cases planned for the same Monday wake the sweep once.
    await plan.replace_plan(first, 1, T, [at(notify(first), monday)], wakes)
    await plan.replace_plan(second, 1, T, [at(notify(second), monday)], wakes)
    assert wakes.calls == [monday]
    # A plan due sooner wakes it again; one due later does not.
    await plan.replace_plan(third, 1, T, [at(notify(third), T + timedelta(days=1))], wakes)
    await plan.replace_plan(third, 2, T, [at(notify(third), T + timedelta(days=9))], wakes)
    assert wakes.calls == [monday, T + timedelta(days=1)]


@pytest.mark.parametrize(
    ("next_look", "woken"),
    [
        pytest.param(None, True, id="never-set"),
        pytest.param(T - SWEEP_OVERDUE - timedelta(minutes=1), True, id="long-past"),
        pytest.param(T - SWEEP_OVERDUE + timedelta(minutes=1), False, id="just-past"),
        pytest.param(T + timedelta(days=3), False, id="same-instant"),
    ],
)
async def test_a_sweep_that_is_not_looking_is_woken_by_any_plan(
    database: Database,
    plan: AlertPlan,
    model: ReadModel,
    next_look: datetime | None,
    woken: bool,
) -> None:
    """A next look never set, or long past, means the sweep is stopped or stuck: wake it."""
    await set_next_wake(database, plan, next_look)
    wakes = Wakes()
    case_ref = await new_case(model)
    await plan.replace_plan(case_ref, 1, T, [at(notify(case_ref), T + timedelta(days=3))], wakes)
    assert wakes.calls == ([T + timedelta(days=3)] if woken else [])


async def test_a_failure_to_wake_the_sweep_rolls_the_plan_back(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    await set_next_wake(database, plan, None)
    case_ref = await new_case(model)

    async def unreachable(_due: datetime) -> None:
        raise ConnectionError("temporal unreachable")

    with pytest.raises(ConnectionError):
        await plan.replace_plan(
            case_ref, 1, T, [at(notify(case_ref), T + timedelta(1))], unreachable
        )
    assert await statuses(database, case_ref) == {}
    # The retry plans it and wakes the sweep.
    wakes = Wakes()
    await plan.replace_plan(case_ref, 1, T, [at(notify(case_ref), T + timedelta(1))], wakes)
    assert wakes.calls == [T + timedelta(1)]


async def test_due_alerts_are_settled_delivered_or_put_back_with_their_error(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    case_ref = await new_case(model, team="T-SETTLE")
    await model.set_allocation(case_ref, "T-SETTLE", "sw9")
    level_0 = at(notify(case_ref, 0), T - timedelta(hours=2))
    level_1 = at(notify(case_ref, 1), T - timedelta(hours=1))
    other_case = await new_case(model)
    other = at(notify(other_case, 2), T - timedelta(minutes=5))
    await plan.replace_plan(case_ref, 1, T - timedelta(days=1), [level_0, level_1], Wakes())
    await plan.replace_plan(other_case, 1, T - timedelta(days=1), [other], Wakes())
    snapshot = ClockSnapshot(
        clock_id="icpc",
        clock_title="Initial child protection conference",
        occurrence=1,
        status=ClockStatus.RUNNING,
        deadline=deadline(),
    )
    await model.record_clock(RecordClockAction(case_ref=case_ref, clock=snapshot))

    found = {due.action.case_ref: due for due in await plan.due(T, limit=100)}
    mine = found[case_ref]
    # Two rungs of one clock due at once (after an outage) go as one alert.
    assert mine.action.key == level_1.key
    assert mine.action.covers_levels == (0, 1)
    assert mine.supersedes == (level_0.key,)
    assert (mine.team, mine.allocated_worker) == ("T-SETTLE", "sw9")

    await plan.settle(
        [
            Settlement(alert=mine, delivered=True),
            Settlement(alert=found[other_case], delivered=False, error="smtp down"),
        ],
        now=T,
        retry_after=timedelta(minutes=1),
    )
    assert await statuses(database, case_ref) == {
        level_0.key: PlanStatus.SUPERSEDED,
        level_1.key: PlanStatus.DELIVERED,
    }
    async with database.sessions() as session:
        fired = (
            await session.execute(select(Clock.levels_fired).where(Clock.case_ref == case_ref))
        ).scalar_one()
        retry = await session.get(PlannedAlert, other.key)
    assert fired == [0, 1]
    assert retry is not None
    assert (retry.status, retry.attempts, retry.last_error) == ("planned", 1, "smtp down")
    assert retry.due_at == T + timedelta(minutes=1)
    # Not due again until then; the sweep's next look is that instant at the latest.
    still_due = {due.action.case_ref for due in await plan.due(T, limit=100)}
    assert not still_due & {case_ref, other_case}
    next_look = await plan.schedule_next_wake(T, timedelta(minutes=10))
    assert next_look <= T + timedelta(minutes=1)


async def test_a_step_is_written_whole_or_not_at_all(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    case_ref = f"STEP-{T.microsecond}-{id(plan)}"
    opening = CaseOpening("child_protection", "2026.1", "T-STEP", None, T.date())
    event = RecordEventAction(
        case_ref=case_ref,
        event_id="r1",
        event_type="referral_received",
        effective_date=T.date(),
        effective_at=None,
        recorded_at=T,
        recorded_by="SW-1",
        outcome=None,
    )
    alert = at(notify(case_ref), T + timedelta(days=1))

    async def unreachable() -> None:
        raise ConnectionError("temporal unreachable")

    def plan_then_fail(session: Session, call_async: CallAsync) -> None:
        def wake(_due: datetime) -> None:
            call_async(unreachable())

        plan.replace_plan_in(session, case_ref, 1, T, [alert], wake)

    async with database.sessions.begin() as session:
        await set_next_wake_in(session)

    with pytest.raises(ConnectionError):
        await model.record_step(case_ref, opening=opening, actions=[event], also=plan_then_fail)
    # Nothing of the step was kept: no case, no event, no plan.
    assert await model.get_case(case_ref) is None
    assert await statuses(database, case_ref) == {}

    await model.record_step(case_ref, opening=opening, actions=[event])
    case = await model.get_case(case_ref)
    assert case is not None
    assert case.team == "T-STEP"


async def set_next_wake_in(session: AsyncSession) -> None:
    """Make the sweep's next look so late that any plan must wake it."""
    await AlertPlan._lock_sweep_row(session)
    await session.execute(update(AlertSweepState).values(next_wake_at=None))


async def test_replacing_a_plan_finds_the_case_rows_by_index(
    database: Database, plan: AlertPlan, model: ReadModel
) -> None:
    """The delete of a case's future plan is a search by case, never a walk of all plans.

    With only an index on ``case_ref``, SQLite chose the sweep's ``(status, due_at)`` index
    and read every planned alert for each step. PostgreSQL's sequential scans are priced
    out, as the table here is tiny (see tests/test_query_plans.py).
    """
    case_ref = await new_case(model)
    sent: list[tuple[str, Any]] = []

    def catch(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("DELETE FROM PLANNED_ALERTS"):
            sent.append((args[2], args[3]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", catch)
    try:
        await plan.replace_plan(
            case_ref, 1, T, [at(notify(case_ref), T + timedelta(days=1))], Wakes()
        )
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", catch)
    [(statement, parameters)] = sent
    async with database.engine.connect() as connection:
        if database.backend == "sqlite":
            rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            query_plan = "\n".join(str(row[-1]) for row in rows)
            expected = "INDEX ix_planned_alerts_case_status_fire (case_ref=? AND status=?"
        else:
            await connection.exec_driver_sql("SET enable_seqscan = off")
            rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            query_plan = "\n".join(str(row[0]) for row in rows)
            expected = "ix_planned_alerts_case_status_fire on planned_alerts"
    assert expected in query_plan, query_plan
