"""Creating the database engine and session factory, and dialect-aware upserts.

The engine is created by the entry point (``worker.py``, the API) from settings and passed
down; nothing here runs at import time, because an engine created on import binds to
whichever event loop happens to exist then.
"""

from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from caseclock.settings import DatabaseSettings

# How long a writer waits for SQLite's write lock before giving up, in milliseconds. Bursts
# of notifications write in short transactions, so waiting is far better than failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000

Insert = postgresql.Insert | sqlite.Insert


def is_sqlite(url: str | URL) -> bool:
    """Say whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_parent(url: str | URL) -> None:
    """Create the folder of a SQLite database file, so that a fresh machine just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    """Per-connection SQLite settings: WAL, enforced foreign keys, a busy timeout.

    WAL lets the API read while a worker writes. Foreign keys are off by default in SQLite
    and must be switched on for every connection.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create an async engine for a URL, with the SQLite connection settings applied.

    Args:
        url: A ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.
        echo: Log every SQL statement (development only: statements carry case refs).

    Returns:
        The engine; the caller disposes of it.

    """
    if is_sqlite(url):
        ensure_sqlite_parent(url)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine.sync_engine, "connect", set_sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True)


def create_engine_and_sessions(
    settings: DatabaseSettings,
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Create the engine and a session factory from the database settings.

    Args:
        settings: The database group of the application settings.

    Returns:
        The engine (dispose of it at shutdown) and a session factory whose objects stay
        usable after commit.

    """
    engine = create_engine(settings.url, echo=settings.echo)
    return engine, async_sessionmaker(engine, expire_on_commit=False)


def insert_for(session: AsyncSession, model: type[DeclarativeBase]) -> Insert:
    """An INSERT for ``model`` that supports ON CONFLICT on the session's backend.

    Args:
        session: The session the statement will run in; its bind decides the dialect.
        model: The mapped class to insert into.

    Returns:
        A PostgreSQL or SQLite insert construct with ``on_conflict_do_*`` methods.

    """
    return dialect_insert(session.get_bind().dialect.name, model)


def dialect_insert(dialect: str, target: type[DeclarativeBase] | Table) -> Insert:
    """An INSERT with ``on_conflict_do_*`` for a dialect by name (``postgresql`` or SQLite)."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)
