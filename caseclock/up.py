"""``caseclock up``: the whole engine on one machine, with a demo caseload.

Starts the embedded Temporal dev server (SQLite under the data folder), migrates the read
model, loads the demo directory, runs the worker as a child process (as in production),
opens the demo cases, says where to look, and stops everything cleanly on Ctrl-C.
"""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import structlog
from temporalio.client import Client

from caseclock.calendar import local_date
from caseclock.cases import calendar_for, open_case
from caseclock.codec import data_converter
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.definition.loader import load_definitions
from caseclock.demo.caseload import demo_caseload
from caseclock.devserver import DevServer
from caseclock.directory import DirectorySeed, load_directory
from caseclock.settings import Settings

DEMO_DIRECTORY = Path(__file__).parent / "demo" / "directory.yaml"
DEFAULT_DEFINITION = "child-protection@2026.1"


def worker_environment(settings: Settings, address: str) -> dict[str, str]:
    """The child worker's environment: ours, pointed at the dev server we started."""
    env = dict(os.environ)
    env["CASECLOCK_TEMPORAL__ADDRESS"] = address
    env["CASECLOCK_DATABASE__URL"] = settings.database.url
    return env


async def load_demo(settings: Settings, client: Client, definitions_dir: Path) -> int:
    """Open the demo cases (again: opening an open case changes nothing); their count."""
    definition = load_definitions(definitions_dir)[DEFAULT_DEFINITION]
    now = datetime.now(UTC)
    today = local_date(now)
    # The oldest demo event is 17 months back; the calendar starts the year before that.
    cases = demo_caseload(today, calendar_for(date(today.year - 2, 1, 1), today))
    for case in cases:
        await open_case(
            client,
            settings.temporal.task_queue,
            definition,
            case.case_ref,
            case.allocation,
            case.events,
            now,
        )
    return len(cases)


async def up(settings: Settings, definitions_dir: Path, demo: bool) -> None:
    """Run everything until Ctrl-C or SIGTERM."""
    log = structlog.get_logger()
    settings.dev_server.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_database_async(settings.database.url)
    engine, sessions = create_engine_and_sessions(settings.database)
    if demo:
        await load_directory(sessions, DirectorySeed.from_yaml(DEMO_DIRECTORY))
    await engine.dispose()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with DevServer.from_settings(settings.dev_server) as server:
        worker = subprocess.Popen(  # noqa: ASYNC220 (a long-lived child, not awaited here)
            [sys.executable, "-m", "worker"], env=worker_environment(settings, server.address)
        )
        try:
            client = await Client.connect(
                server.address, data_converter=data_converter(settings.encryption)
            )
            if demo:
                count = await load_demo(settings, client, definitions_dir)
                log.info("demo caseload opened", cases=count)
            _say_where_to_look(server.ui_url, settings)
            while not stop.is_set() and worker.poll() is None:
                await asyncio.wait([asyncio.create_task(stop.wait())], timeout=1)
            if worker.poll() is not None:
                log.error("worker exited", returncode=worker.returncode)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
            log.info("stopped")


def _say_where_to_look(ui_url: str | None, settings: Settings) -> None:
    lines = [
        "",
        "Caseclock is running. Ctrl-C stops it.",
        f"  Temporal UI:          {ui_url or '(headless)'}",
        f"  Read model:           {settings.database.url}",
        "  Escalations:          .venv/bin/caseclock escalations",
        "  A manager's inbox:    .venv/bin/caseclock inbox TM-AE",
        "  A case's clocks:      .venv/bin/caseclock case DEMO-0004",
        "",
    ]
    print("\n".join(lines), flush=True)
