"""The API entry point: settings, database, Temporal client and definitions in, uvicorn out.

Run it with ``caseclock api``. Like ``worker.py`` it is an entry point of its own: it
migrates the read model, opens the database engine and a Temporal client (with the payload
codec) for as long as the server runs, and closes them when uvicorn stops on SIGINT or
SIGTERM. Nothing imports it but the CLI.
"""

import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from caseclock.api.app import create_app
from caseclock.codec import data_converter
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.definition.loader import load_definitions
from caseclock.gc_pauses import report_long_pauses
from caseclock.settings import Settings


@dataclass(frozen=True)
class ApiResources:
    """What the API holds open while it serves."""

    client: Client
    sessions: async_sessionmaker[AsyncSession]


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT or SIGTERM like the worker does.

    uvicorn re-raises the signal once it has stopped, which would interrupt the entry point
    while it closes the database engine; here the signal only asks the server to stop.
    """

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop serving on SIGINT or SIGTERM (twice: stop at once), and nothing more."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


@asynccontextmanager
async def api_lifespan(settings: Settings) -> AsyncIterator[ApiResources]:
    """Migrate the database, open the engine and connect to Temporal; close them after.

    Args:
        settings: The application settings.

    Yields:
        The Temporal client and the session factory.

    """
    await upgrade_database_async(settings.database.url)
    engine, sessions = create_engine_and_sessions(settings.database)
    try:
        client = await Client.connect(
            settings.temporal.address,
            namespace=settings.temporal.namespace,
            data_converter=data_converter(settings.encryption),
        )
        yield ApiResources(client=client, sessions=sessions)
    finally:
        await engine.dispose()


async def serve(settings: Settings, definitions_folder: Path) -> None:
    """Serve the API on ``settings.api.host:port`` until SIGINT or SIGTERM.

    Args:
        settings: The application settings.
        definitions_folder: The folder of definition files new cases may follow.

    Raises:
        caseclock.definition.loader.DefinitionError: If a definition is invalid.

    """
    log = structlog.get_logger(__name__)
    definitions = load_definitions(definitions_folder)
    async with api_lifespan(settings) as resources:
        app = create_app(settings, resources.client, resources.sessions, definitions)
        config = uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            # Logging is structlog's, configured once by the entry point.
            log_config=None,
            server_header=False,
        )
        log.info(
            "api_serving",
            host=settings.api.host,
            port=settings.api.port,
            definitions=len(definitions),
        )
        # Long collections logged, as in the worker, and full collections kept off what
        # start-up loaded (imports, definitions), which lives as long as the server. The
        # young generation keeps CPython's threshold: in the query benchmark the worker's
        # 10,000 made My work's longest pauses 12 to 16 ms instead of 4 to 7, and its p99
        # worse.
        report_long_pauses()
        gc.collect()
        gc.freeze()
        await _Server(config).serve()
        log.info("api_stopped")
