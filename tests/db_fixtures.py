"""Database fixtures: the real Alembic migrations on a fresh SQLite file and on PostgreSQL.

Import ``database`` into a test module to use it. It is module-scoped and parametrized over
both backends, so every test of the module runs on each; the PostgreSQL runs carry the
``postgres`` mark (deselect them with ``-m "not postgres"``). Tests share the module's
database, so each one works on its own case references and codes (``unique``).

The PostgreSQL server is ``$CASECLOCK_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each module creates a database named
``caseclock_t_<random>`` there and drops it afterwards.
"""

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.settings import DatabaseSettings

POSTGRES_DSN_ENV = "CASECLOCK_TEST_POSTGRES_DSN"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@dataclass(frozen=True)
class Database:
    """A migrated database and the engine and sessions on it."""

    backend: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def unique(prefix: str) -> str:
    """A code no other test uses, for tests that share one database."""
    return f"{prefix}-{secrets.token_hex(4)}"


async def _open(backend: str, url: str) -> AsyncIterator[Database]:
    await upgrade_database_async(url)
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    try:
        yield Database(backend=backend, url=url, engine=engine, sessions=sessions)
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="module", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A freshly migrated database for this test module, on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        # A folder that does not exist yet: migrating must create it.
        path = tmp_path_factory.mktemp("sqlite") / "var" / "caseclock.db"
        async for db in _open("sqlite", f"sqlite+aiosqlite:///{path}"):
            yield db
        return

    async with throwaway_postgres() as url:
        async for db in _open("postgres", url):
            yield db


@asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards; its URL."""
    admin_dsn = os.environ.get(POSTGRES_DSN_ENV, DEFAULT_POSTGRES_DSN)
    name = f"caseclock_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(admin_dsn).set(drivername="postgresql+asyncpg", database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
