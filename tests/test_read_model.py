"""The read model on real databases: migrations, idempotent upserts, claims, acknowledgements.

Every test runs on SQLite and on PostgreSQL (see ``tests/db_fixtures.py``).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection

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
from caseclock.db import UnknownCaseError, UnknownEscalationError
from caseclock.db.migrate import alembic_config, upgrade_database_async
from caseclock.db.models import (
    AuditEntry,
    Base,
    Case,
    CaseStage,
    Clock,
    Delivery,
    Escalation,
    Event,
    InboxItem,
)
from caseclock.db.read_model import AlertClaims, ClaimState, DeliveryKey, ReadModel
from caseclock.db.step_writer import step_writer_for
from caseclock.units import Counting, Unit
from tests.db_fixtures import Database, database, unique

__all__ = ["database"]

OPENED = date(2026, 3, 2)
DUE_AT = datetime(2026, 3, 23, 23, 59, 59, tzinfo=UTC)


def deadline(due_date: date = date(2026, 3, 23), amount: int = 15) -> Deadline:
    return Deadline(
        rule_id="icpc_within_15_wd",
        rule_title="Initial child protection conference",
        definition_id="child_protection",
        definition_version="2026.1",
        start_event_type="strategy_discussion",
        start_event_id="ev-1",
        start_date=OPENED,
        amount=amount,
        unit=Unit.WORKING_DAYS,
        counting=Counting.DAY_AFTER_IS_DAY_1,
        calendar_id="england-and-wales-2026.1",
        due_date=due_date,
        due_at=datetime.combine(due_date, DUE_AT.timetz()),
        source="Working Together to Safeguard Children 2023",
    )


def notify(
    case_ref: str, level: int = 1, roles: tuple[str, ...] = ("social_worker",)
) -> NotifyAction:
    return NotifyAction(
        key=f"{case_ref}/icpc/1/{level}",
        case_ref=case_ref,
        clock_id="icpc",
        clock_title="Initial child protection conference",
        occurrence=1,
        level=level,
        level_name=f"level-{level}",
        covers_levels=(level,),
        roles=roles,
        state=AlertState.DUE_SOON if level == 1 else AlertState.OVERDUE,
        fire_at=DUE_AT - timedelta(days=3) + timedelta(hours=level),
        deadline=deadline(),
        what_to_do="Hold the conference or record why not.",
    )


async def count(db: Database, model: type[Base], **where: Any) -> int:
    query = select(func.count()).select_from(model).filter_by(**where)
    async with db.sessions() as session:
        return (await session.execute(query)).scalar_one()


async def new_case(model: ReadModel, team: str | None = None) -> str:
    case_ref = unique("CASE")
    await model.upsert_case(
        case_ref, "child_protection", "2026.1", team or unique("T"), "sw1", OPENED
    )
    return case_ref


@pytest_asyncio.fixture
async def model(database: Database) -> AsyncIterator[ReadModel]:
    """The read model as the worker builds it: steps on a thread of their own on SQLite."""
    steps = step_writer_for(database.url, database.sessions)
    yield ReadModel(database.sessions, step_writer=steps)
    await steps.close()


# Migrations ---------------------------------------------------------------------------


def _schema_state(connection: Connection) -> tuple[set[str], list[Any]]:
    tables = set(inspect(connection).get_table_names())
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return tables, compare_metadata(context, Base.metadata)


async def test_migrations_create_every_table_as_the_models_describe(database: Database) -> None:
    async with database.engine.connect() as connection:
        tables, differences = await connection.run_sync(_schema_state)
    assert tables == {*Base.metadata.tables, "alembic_version"}
    assert differences == []


async def test_migrating_again_changes_nothing(database: Database) -> None:
    await upgrade_database_async(database.url)
    async with database.engine.connect() as connection:
        version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        head = ScriptDirectory.from_config(alembic_config(database.url)).get_current_head()
        assert version.scalars().all() == [head]


# Cases, events, stages, clocks --------------------------------------------------------


async def test_upsert_case_twice_keeps_one_row_with_the_latest_values(
    database: Database, model: ReadModel
) -> None:
    case_ref = unique("CASE")
    await model.upsert_case(case_ref, "child_protection", "2026.1", "T-A", None, OPENED)
    await model.upsert_case(case_ref, "child_protection", "2026.2", "T-B", "sw9", OPENED)

    assert await count(database, Case, case_ref=case_ref) == 1
    case = await model.get_case(case_ref)
    assert case is not None
    assert (case.definition_version, case.team, case.allocated_worker) == ("2026.2", "T-B", "sw9")
    assert case.updated_at.tzinfo is not None
    assert await model.get_case(unique("NOPE")) is None


async def test_set_allocation_moves_the_case_and_its_clocks(model: ReadModel) -> None:
    case_ref = await new_case(model, team="T-OLD")
    await model.record_clock(RecordClockAction(case_ref=case_ref, clock=snapshot()))

    await model.set_allocation(case_ref, "T-NEW", None)
    await model.set_allocation(case_ref, "T-NEW", None)

    case = await model.get_case(case_ref)
    assert case is not None
    assert (case.team, case.allocated_worker) == ("T-NEW", None)
    assert [clock.team for clock in await model.list_clocks(case_ref)] == ["T-NEW"]


async def test_writes_about_an_unknown_case_are_refused_clearly(model: ReadModel) -> None:
    with pytest.raises(UnknownCaseError, match="record the case first"):
        await model.set_allocation("NO-SUCH-CASE", "T", None)
    with pytest.raises(UnknownCaseError, match="NO-SUCH-CASE"):
        await model.record_event(event("NO-SUCH-CASE", "ev-1"))
    with pytest.raises(UnknownCaseError):
        await model.record_clock(RecordClockAction(case_ref="NO-SUCH-CASE", clock=snapshot()))
    with pytest.raises(UnknownCaseError):
        await model.record_escalation(notify("NO-SUCH-CASE"))


def event(case_ref: str, event_id: str, outcome: str | None = None) -> RecordEventAction:
    return RecordEventAction(
        case_ref=case_ref,
        event_id=event_id,
        event_type="strategy_discussion",
        effective_date=OPENED,
        effective_at=None,
        recorded_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
        recorded_by="sw1",
        outcome=outcome,
    )


async def test_record_event_twice_keeps_one_row_with_the_latest_values(
    database: Database, model: ReadModel
) -> None:
    case_ref = await new_case(model)
    await model.record_event(event(case_ref, "ev-1"))
    await model.record_event(event(case_ref, "ev-1", outcome="s47_enquiry"))
    await model.record_event(event(case_ref, "ev-2"))

    assert await count(database, Event, case_ref=case_ref) == 2
    async with database.sessions() as session:
        row = await session.scalar(select(Event).filter_by(case_ref=case_ref, event_id="ev-1"))
    assert row is not None
    assert row.outcome == "s47_enquiry"
    assert row.recorded_at == datetime(2026, 3, 2, 10, tzinfo=UTC)


def stage(
    case_ref: str, track: str, name: str, entered_on: date, event_id: str
) -> RecordStageAction:
    return RecordStageAction(
        case_ref=case_ref, track=track, stage=name, entered_on=entered_on, event_id=event_id
    )


async def test_record_stage_keeps_history_and_the_latest_stage_per_track(
    database: Database, model: ReadModel
) -> None:
    case_ref = await new_case(model)
    await model.record_stage(stage(case_ref, "main", "referral", OPENED, "ev-1"))
    await model.record_stage(stage(case_ref, "main", "s47", date(2026, 3, 4), "ev-2"))
    await model.record_stage(stage(case_ref, "main", "s47", date(2026, 3, 4), "ev-2"))
    await model.record_stage(stage(case_ref, "legal", "plo", date(2026, 3, 5), "ev-3"))
    # A retried write of an older stage must not roll the track back.
    await model.record_stage(stage(case_ref, "main", "referral", OPENED, "ev-1"))

    assert await count(database, CaseStage, case_ref=case_ref) == 3
    case = await model.get_case(case_ref)
    assert case is not None
    assert case.current_stages == {"main": "s47", "legal": "plo"}


def snapshot(
    status: ClockStatus = ClockStatus.RUNNING,
    levels_fired: tuple[int, ...] = (),
    closed_on: date | None = None,
) -> ClockSnapshot:
    return ClockSnapshot(
        clock_id="icpc",
        clock_title="Initial child protection conference",
        occurrence=1,
        status=status,
        deadline=deadline(),
        levels_fired=levels_fired,
        closed_by_event_id="ev-9" if closed_on else None,
        closed_on=closed_on,
    )


async def test_record_clock_twice_keeps_one_row_with_the_latest_values(
    database: Database, model: ReadModel
) -> None:
    case_ref = await new_case(model, team="T-CLOCK")
    await model.record_clock(RecordClockAction(case_ref=case_ref, clock=snapshot()))
    met = snapshot(ClockStatus.MET_LATE, levels_fired=(1, 2), closed_on=date(2026, 3, 25))
    await model.record_clock(RecordClockAction(case_ref=case_ref, clock=met))
    await model.record_clock(RecordClockAction(case_ref=case_ref, clock=met))

    assert await count(database, Clock, case_ref=case_ref) == 1
    (clock,) = await model.list_clocks(case_ref)
    assert clock.status is ClockStatus.MET_LATE
    assert clock.levels_fired == (1, 2)
    assert (clock.closed_by_event_id, clock.closed_on) == ("ev-9", date(2026, 3, 25))
    assert clock.team == "T-CLOCK"
    assert clock.deadline == deadline()
    assert clock.due_at == deadline().due_at
    assert clock.explanation == deadline().explain()


# Escalations and acknowledgement ------------------------------------------------------


async def test_record_escalation_twice_keeps_one_row_and_the_acknowledgement(
    database: Database, model: ReadModel
) -> None:
    case_ref = await new_case(model)
    first = await model.record_escalation(notify(case_ref))
    await model.acknowledge(first.key, "tm1", "Conference booked for Friday.")
    again = await model.record_escalation(notify(case_ref, roles=("social_worker", "team_manager")))

    assert await count(database, Escalation, case_ref=case_ref) == 1
    assert again.roles == ("social_worker", "team_manager")
    assert again.created_at == first.created_at
    assert again.acknowledged_by == "tm1"


async def test_acknowledge_records_who_when_and_note_and_keeps_the_first(
    model: ReadModel,
) -> None:
    case_ref = await new_case(model)
    escalation = await model.record_escalation(notify(case_ref, level=2))
    assert escalation.is_open

    before = datetime.now(UTC)
    first = await model.acknowledge(escalation.key, "tm1", "Spoke to the worker; ICPC set.")
    second = await model.acknowledge(escalation.key, "sm1", "Also seen.")

    assert first.already_acknowledged is False
    assert first.acknowledged_by == "tm1"
    assert first.acknowledgement_note == "Spoke to the worker; ICPC set."
    assert first.acknowledged_at is not None
    assert before - timedelta(seconds=1) <= first.acknowledged_at <= datetime.now(UTC)
    assert second.already_acknowledged is True
    assert (second.acknowledged_by, second.acknowledged_at, second.acknowledgement_note) == (
        "tm1",
        first.acknowledged_at,
        first.acknowledgement_note,
    )


async def test_acknowledging_an_unknown_escalation_is_a_clear_error(model: ReadModel) -> None:
    with pytest.raises(UnknownEscalationError, match="no escalation has the key 'X/y/1/1'"):
        await model.acknowledge("X/y/1/1", "tm1", "note")


async def test_list_escalations_filters_by_team_open_and_level(model: ReadModel) -> None:
    team, other_team = unique("T"), unique("T")
    case_ref = await new_case(model, team=team)
    other_case = await new_case(model, team=other_team)
    low = await model.record_escalation(notify(case_ref, level=1))
    high = await model.record_escalation(notify(case_ref, level=3))
    acked = await model.record_escalation(notify(case_ref, level=2))
    await model.record_escalation(notify(other_case, level=3))
    await model.acknowledge(acked.key, "tm1", "done")

    keys = [e.key for e in await model.list_escalations(team, open_only=True, level_at_least=None)]
    assert keys == [low.key, high.key]
    every = await model.list_escalations(team, open_only=False, level_at_least=None)
    assert [e.key for e in every] == [low.key, acked.key, high.key]
    high_only = await model.list_escalations(team, open_only=False, level_at_least=2)
    assert [e.key for e in high_only] == [acked.key, high.key]
    assert {e.team for e in await model.list_escalations(None, False, 3)} >= {team, other_team}


# Deliveries and inbox -----------------------------------------------------------------


async def test_claim_delivery_is_first_wins_under_a_race(
    database: Database, model: ReadModel
) -> None:
    escalation = await model.record_escalation(notify(await new_case(model)))

    results = await asyncio.gather(
        *(model.claim_delivery(escalation.key, "tm1", "email") for _ in range(8))
    )

    assert sorted(results) == [False] * 7 + [True]
    assert await count(database, Delivery, escalation_key=escalation.key) == 1


async def test_a_sent_delivery_is_never_claimed_again(model: ReadModel) -> None:
    key = (await model.record_escalation(notify(await new_case(model)))).key
    assert await model.claim_delivery(key, "tm1", "email")
    await model.mark_delivered(key, "tm1", "email")
    await model.mark_delivered(key, "tm1", "email")
    await model.mark_failed(key, "tm1", "email", "late error from a stale sender")

    assert not await model.claim_delivery(key, "tm1", "email")
    assert await model.delivery_sent(key, "tm1", "email")
    assert (await model.delivery_counts())[key] == 1
    # Another channel or person is a separate delivery.
    assert await model.claim_delivery(key, "tm1", "webhook")
    assert await model.claim_delivery(key, "sm1", "email")


async def test_a_failed_or_expired_claim_can_be_taken_again(
    database: Database, model: ReadModel
) -> None:
    key = (await model.record_escalation(notify(await new_case(model)))).key
    assert await model.claim_delivery(key, "tm1", "email")
    await model.mark_failed(key, "tm1", "email", "SMTP 451 try later")
    assert await model.claim_delivery(key, "tm1", "email")
    assert not await model.claim_delivery(key, "tm1", "email")  # a live claim holds
    assert not await model.delivery_sent(key, "tm1", "email")

    later = ReadModel(database.sessions, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert await later.claim_delivery(key, "tm1", "email")  # the lease ran out
    async with database.sessions() as session:
        row = await session.scalar(select(Delivery).filter_by(escalation_key=key))
    assert row is not None
    assert (row.status, row.attempts, row.last_error) == ("pending", 3, "SMTP 451 try later")


async def test_deliveries_need_a_recorded_escalation(model: ReadModel) -> None:
    with pytest.raises(UnknownEscalationError):
        await model.claim_delivery("NO/such/1/1", "tm1", "email")
    with pytest.raises(UnknownEscalationError):
        await model.add_inbox_item("tm1", "NO/such/1/1")


async def test_inbox_holds_each_alert_once_and_remembers_reading(model: ReadModel) -> None:
    staff = unique("tm")
    case_ref = await new_case(model)
    first = await model.record_escalation(notify(case_ref, level=1))
    second = await model.record_escalation(notify(case_ref, level=2))
    for key in (first.key, first.key, second.key):
        await model.add_inbox_item(staff, key)
    await model.mark_inbox_read(staff, first.key)

    items = await model.inbox(staff)
    assert sorted(item.escalation.key for item in items) == [first.key, second.key]
    read = {item.escalation.key: item.read_at is not None for item in items}
    assert read == {first.key: True, second.key: False}
    assert await model.inbox(unique("nobody")) == []


async def test_write_audit_appends_an_entry(database: Database, model: ReadModel) -> None:
    case_ref = unique("CASE")
    await model.write_audit("tm1", "view_case", case_ref, {"fields": ["clocks"]})
    async with database.sessions() as session:
        entry = await session.scalar(select(AuditEntry).filter_by(case_ref=case_ref))
    assert entry is not None
    assert (entry.actor, entry.action, entry.detail) == ("tm1", "view_case", {"fields": ["clocks"]})
    assert entry.at.tzinfo is not None


# Batched claims ------------------------------------------------------------------------


def states(claims: AlertClaims) -> dict[tuple[str, str], ClaimState]:
    return {(key.staff_code, key.channel): claim.state for key, claim in claims.claims.items()}


async def test_a_batch_claim_records_the_alerts_and_claims_each_delivery_once(
    database: Database, model: ReadModel
) -> None:
    action = notify(await new_case(model), level=2)
    wanted = [
        DeliveryKey(action.key, staff, channel)
        for staff in ("tm1", "sm1")
        for channel in ("inbox", "email")
    ]

    first = await model.record_alerts_and_claim([action], wanted)
    racing = await model.record_alerts_and_claim([action], wanted)

    assert first.unknown_cases == frozenset()
    assert states(first) == {
        ("tm1", "inbox"): ClaimState.SENT_NOW,
        ("sm1", "inbox"): ClaimState.SENT_NOW,
        ("tm1", "email"): ClaimState.CLAIMED,
        ("sm1", "email"): ClaimState.CLAIMED,
    }
    assert states(racing) == {
        ("tm1", "inbox"): ClaimState.ALREADY_SENT,
        ("sm1", "inbox"): ClaimState.ALREADY_SENT,
        ("tm1", "email"): ClaimState.IN_PROGRESS,
        ("sm1", "email"): ClaimState.IN_PROGRESS,
    }
    assert [e.key for e in await model.list_escalations(open_only=False)].count(action.key) == 1
    assert await count(database, InboxItem, escalation_key=action.key) == 2

    tm_email, sm_email = (first.claims[key].delivery_id for key in wanted if key.channel == "email")
    assert tm_email is not None
    assert sm_email is not None
    await model.mark_batch([tm_email], {sm_email: "SMTP 451 try later"})
    await model.mark_batch([], {tm_email: "a stale sender's late error"})
    again = await model.record_alerts_and_claim([action], wanted)

    assert states(again)[("tm1", "email")] is ClaimState.ALREADY_SENT
    assert states(again)[("sm1", "email")] is ClaimState.CLAIMED
    rows = await model.delivery_rows([action.key])
    assert rows[DeliveryKey(action.key, "tm1", "email")] == ("sent", 1)
    assert rows[DeliveryKey(action.key, "sm1", "email")] == ("pending", 2)


async def test_a_batch_claim_takes_a_lapsed_claim_and_keeps_an_acknowledgement(
    database: Database, model: ReadModel
) -> None:
    action = notify(await new_case(model))
    email = DeliveryKey(action.key, "tm1", "email")
    assert states(await model.record_alerts_and_claim([action], [email])) == {
        ("tm1", "email"): ClaimState.CLAIMED
    }
    await model.acknowledge(action.key, "tm1", "Conference booked.")

    later = ReadModel(database.sessions, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    lapsed = await later.record_alerts_and_claim([action], [email])

    assert states(lapsed) == {("tm1", "email"): ClaimState.CLAIMED}
    [escalation] = [e for e in await model.list_escalations(open_only=False) if e.key == action.key]
    assert escalation.acknowledgement_note == "Conference booked."


async def test_a_batch_claim_leaves_out_alerts_of_unknown_cases(model: ReadModel) -> None:
    known, ghost = notify(await new_case(model)), notify(unique("GHOST"))
    wanted = [DeliveryKey(a.key, "tm1", "inbox") for a in (known, ghost)]

    claims = await model.record_alerts_and_claim([known, ghost], wanted)

    assert claims.unknown_cases == {ghost.case_ref}
    assert {key.escalation_key for key in claims.claims} == {known.key}
