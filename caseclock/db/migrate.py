"""Bringing a database's schema up to date with the migrations shipped in the package."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from caseclock.db.engine import ensure_sqlite_parent

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the packaged migrations and this database.

    The URL travels in ``attributes`` rather than the ini options, where ``%`` in a
    password would be taken for interpolation.

    Args:
        url: A ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.

    Returns:
        The configuration, usable with any ``alembic.command`` function.

    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


def upgrade_database(url: str) -> None:
    """Run ``alembic upgrade head`` on a database, creating a SQLite file's folder first.

    The migrations run on their own event loop, so call this from synchronous code (or
    use :func:`upgrade_database_async` from a coroutine).

    Args:
        url: A ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.

    """
    ensure_sqlite_parent(url)
    command.upgrade(alembic_config(url), "head")


async def upgrade_database_async(url: str) -> None:
    """:func:`upgrade_database` for a caller already inside an event loop.

    Args:
        url: A ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.

    """
    await asyncio.to_thread(upgrade_database, url)
