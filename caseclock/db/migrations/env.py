"""Alembic environment: runs the migrations of the read model on an async engine.

The URL comes from ``config.attributes["url"]`` (set by ``caseclock.db.migrate``), else from
``sqlalchemy.url`` in ``alembic.ini``, else from the application settings
(``CASECLOCK_DATABASE__URL``), so ``alembic upgrade head`` at the repository root and
``upgrade_database(url)`` in code migrate the same way.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from caseclock.db.engine import ensure_sqlite_parent, is_sqlite
from caseclock.db.models import Base
from caseclock.settings import Settings

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    return str(url) if url else Settings().database.url


def run_migrations_offline(url: str) -> None:
    """Emit the SQL of the migrations instead of running them (``alembic upgrade --sql``)."""
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection, url: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online(url: str) -> None:
    """Run the migrations on a fresh engine (no pool: this process uses it once)."""
    ensure_sqlite_parent(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on, url)
    finally:
        await engine.dispose()


# Only the alembic command line configures logging from the ini file; an application that
# migrates in code keeps its own (structlog) configuration.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline(_database_url())
else:
    asyncio.run(run_migrations_online(_database_url()))
