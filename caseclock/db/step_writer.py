"""Where a case's step is written: one transaction of plain (synchronous) SQLAlchemy.

A step (the case row when it opens, its events, stages and clocks, and its alert plan) is
about a dozen small statements. Through aiosqlite each statement is several hops between
the event loop and the driver's thread, and opening cases spent more of the worker's CPU
on those hops than on SQLite. So the step is written as synchronous code, run in one go:

- on SQLite, by :class:`SqliteThreadWriter`: one hop to a thread of its own, holding its
  own connection, that runs the whole transaction. Its queue also makes the steps take
  SQLite's single write lock in turn (first come, first served), instead of racing for
  it in SQLite's busy handler;
- on PostgreSQL, by :class:`SessionWriter`: ``AsyncSession.run_sync`` on asyncpg, which
  has no thread to hop to.

A step may need to await something inside its transaction (waking the sweep, which must
roll the plan back if it fails). It is given ``call_async``, which runs a coroutine on the
event loop and returns its result, whichever writer runs it.
"""

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from caseclock.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    ensure_sqlite_parent,
    is_sqlite,
    set_sqlite_pragmas,
)

_Result = TypeVar("_Result")

CallAsync = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine on the event loop from inside a step; returns what it returns."""

StepWork = Callable[[Session, CallAsync], _Result]
"""A step's statements: given the transaction's session and ``call_async``."""


class StepWriter(Protocol):
    """Runs a step's work in one transaction: committed if it returns, rolled back if not."""

    async def write(self, work: StepWork[_Result]) -> _Result:
        """Run ``work`` in a new transaction and commit it; its exception rolls it back."""
        ...

    async def close(self) -> None:
        """Release the writer's connection (and thread); it is not used afterwards."""
        ...


class SessionWriter:
    """Steps through the async sessions' own connections (``AsyncSession.run_sync``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def write(self, work: StepWork[_Result]) -> _Result:
        """Run ``work`` in a greenlet on this event loop; ``call_async`` awaits in place."""
        async with self._sessions.begin() as session:
            return await session.run_sync(work, await_only)

    async def close(self) -> None:
        """Nothing of its own to release: the sessions' engine belongs to the caller."""


class SqliteThreadWriter:
    """Steps on one thread with its own SQLite connection, one hop per step.

    Args:
        url: The read model's URL (``sqlite+aiosqlite://...``); the same file is opened
            with the standard ``sqlite3`` driver, with the same pragmas as the async engine.

    """

    def __init__(self, url: str | URL) -> None:
        ensure_sqlite_parent(url)
        sync_url = make_url(url).set(drivername="sqlite")
        # The connection is only ever used by the writer thread, one step at a time; it is
        # closed from the event loop's thread at shutdown, hence check_same_thread off.
        self._engine = create_engine(
            sync_url,
            connect_args={
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "check_same_thread": False,
            },
            pool_size=1,
            max_overflow=0,
        )
        event.listen(self._engine, "connect", set_sqlite_pragmas)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caseclock-step")

    async def write(self, work: StepWork[_Result]) -> _Result:
        """Run ``work`` on the writer thread; ``call_async`` blocks it until the loop answers."""
        loop = asyncio.get_running_loop()

        def call_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

        def transaction() -> _Result:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                return work(session, call_async)

        return await loop.run_in_executor(self._thread, transaction)

    async def close(self) -> None:
        """Wait for steps already queued, then close the connection and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        self._engine.dispose()


def step_writer_for(url: str | URL, sessions: async_sessionmaker[AsyncSession]) -> StepWriter:
    """The writer for a read model: a thread of its own on SQLite, the sessions otherwise.

    An in-memory SQLite database exists only on its own connection, so it keeps to the
    sessions too.
    """
    database = make_url(url).database or ""
    if is_sqlite(url) and database not in {"", ":memory:"} and "mode=memory" not in database:
        return SqliteThreadWriter(url)
    return SessionWriter(sessions)
