"""The step writers: one transaction per step, committed whole or rolled back whole.

SQLite's writer runs steps on a thread of its own, one at a time in the order they came;
PostgreSQL's runs them through the async session. Both let a step await a coroutine on the
event loop inside its transaction. Runs on SQLite and on PostgreSQL.
"""

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Integer, literal, select
from sqlalchemy.orm import Session

from caseclock.db import UnknownCaseError
from caseclock.db.models import Case
from caseclock.db.read_model import CaseOpening, ReadModel
from caseclock.db.step_writer import (
    CallAsync,
    SessionWriter,
    SqliteThreadWriter,
    StepWriter,
    step_writer_for,
)
from tests import db_fixtures
from tests.db_fixtures import Database, unique
from tests.test_read_model import event

database = db_fixtures.database  # every test here runs on SQLite and on PostgreSQL


@pytest_asyncio.fixture
async def writer(database: Database) -> AsyncIterator[StepWriter]:
    steps = step_writer_for(database.url, database.sessions)
    yield steps
    await steps.close()


def opening(team: str) -> CaseOpening:
    return CaseOpening("child_protection", "2026.1", team, None, date(2026, 3, 2))


async def teams(database: Database, *refs: str) -> dict[str, str]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(Case.case_ref, Case.team_code).where(Case.case_ref.in_(refs))
        )
        return dict(rows.all())


def test_each_backend_gets_its_writer(database: Database, writer: StepWriter) -> None:
    expected = SqliteThreadWriter if database.backend == "sqlite" else SessionWriter
    assert type(writer) is expected


async def test_a_step_commits_and_a_failed_step_leaves_nothing(
    database: Database, writer: StepWriter
) -> None:
    model = ReadModel(database.sessions, step_writer=writer)
    kept, lost = unique("STEP"), unique("STEP")
    await model.record_step(kept, opening=opening("T-A"), actions=[event(kept, "r1")])

    def fail_after_writing(_session: Session, _call_async: CallAsync) -> None:
        raise RuntimeError("the plan could not be written")

    with pytest.raises(RuntimeError):
        await model.record_step(
            lost,
            opening=opening("T-A"),
            actions=[event(lost, "r1")],
            also=fail_after_writing,
        )
    assert await teams(database, kept, lost) == {kept: "T-A"}


async def test_a_step_about_an_unknown_case_is_refused(
    database: Database, writer: StepWriter
) -> None:
    model = ReadModel(database.sessions, step_writer=writer)
    missing = unique("NOPE")
    with pytest.raises(UnknownCaseError):
        await model.record_step(missing, actions=[event(missing, "r1")])


async def test_a_step_awaits_on_the_event_loop_inside_its_transaction(
    database: Database, writer: StepWriter
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    async def on_the_loop() -> int:
        seen.append(threading.get_ident())
        await asyncio.sleep(0)
        return 42

    def work(session: Session, call_async: CallAsync) -> int:
        answer = call_async(on_the_loop())
        return int(session.execute(select(literal(answer, Integer))).scalar_one())

    assert await writer.write(work) == 42
    assert seen == [loop_thread]


async def test_sqlite_steps_run_one_at_a_time_in_the_order_they_came(tmp_path: Path) -> None:
    writer = SqliteThreadWriter(f"sqlite+aiosqlite:///{tmp_path}/steps.db")
    running: list[int] = []
    order: list[int] = []
    overlapped = False

    def work(number: int) -> Callable[[Session, CallAsync], None]:
        def step(_session: Session, _call_async: CallAsync) -> None:
            nonlocal overlapped
            overlapped |= bool(running)
            running.append(number)
            order.append(number)
            threading.Event().wait(0.002)
            running.remove(number)

        return step

    try:
        await asyncio.gather(*(writer.write(work(number)) for number in range(20)))
    finally:
        await writer.close()
    assert order == list(range(20))
    assert not overlapped
