"""``caseclock up``: the whole engine on one machine, with a demo caseload.

Starts the embedded Temporal dev server (SQLite under the data folder), migrates the read
model, loads the demo directory, runs the worker and the HTTP API with the dashboard as child
processes (as in production), opens the demo cases, says where to look, and stops everything
cleanly on Ctrl-C. If either child stops, everything stops.
"""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import structlog
from temporalio.client import Client

from caseclock.calendar import local_date
from caseclock.cases import calendar_for, open_case
from caseclock.codec import data_converter
from caseclock.dashboard.assets import DashboardAssetsMissingError, find_assets
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.definition.loader import load_definitions
from caseclock.demo.caseload import demo_caseload
from caseclock.devserver import DevServer
from caseclock.directory import DirectorySeed, load_directory
from caseclock.settings import Settings

DEMO_DIRECTORY = Path(__file__).parent / "demo" / "directory.yaml"
DEFAULT_DEFINITION = "child-protection@2026.1"
API_READY_SECONDS = 30.0


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


def dashboard_url(settings: Settings) -> str:
    """Where the API serves the dashboard on this machine."""
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (naming the wildcard, not binding to it)
        host = "127.0.0.1"
    return f"http://{host}:{settings.api.port}/"


async def wait_for_api(url: str, api: "subprocess.Popen[bytes]") -> bool:
    """Whether the API answers its health check before it exits or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + API_READY_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as http:
        while api.poll() is None and loop.time() < deadline:
            try:
                if (await http.get(f"{url}api/v1/health")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    return False


def _stop(child: "subprocess.Popen[bytes]") -> None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()


async def up(settings: Settings, definitions_dir: Path, demo: bool) -> None:
    """Run everything until Ctrl-C or SIGTERM, or until the worker or the API stops.

    Raises:
        SystemExit: Before anything starts, if GOV.UK Frontend (for the dashboard) is not
            installed; the message says how to install it.

    """
    log = structlog.get_logger()
    try:
        find_assets()  # the API would fail without them: say so before starting anything
    except DashboardAssetsMissingError as error:
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(1) from error
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
        env = worker_environment(settings, server.address)
        # Long-lived children, not awaited here: they run until we stop them.
        worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env)  # noqa: ASYNC220
        api = subprocess.Popen(  # noqa: ASYNC220, S603 (our own entry point)
            [sys.executable, "-m", "caseclock.cli", "api", "--definitions", str(definitions_dir)],
            env=env,
        )
        children = {"worker": worker, "api": api}
        try:
            client = await Client.connect(
                server.address, data_converter=data_converter(settings.encryption)
            )
            if demo:
                count = await load_demo(settings, client, definitions_dir)
                log.info("demo caseload opened", cases=count)
            if await wait_for_api(dashboard_url(settings), api):
                _say_where_to_look(server.ui_url, settings)
            else:
                log.error("api did not answer", url=dashboard_url(settings))
            while not stop.is_set() and all(c.poll() is None for c in children.values()):
                await asyncio.wait([asyncio.create_task(stop.wait())], timeout=1)
            for name, child in children.items():
                # Ctrl-C in a terminal reaches the children too: then an exit is expected.
                if child.poll() is not None and not stop.is_set():
                    log.error(f"{name} exited", returncode=child.returncode)
        finally:
            for child in children.values():
                _stop(child)
            log.info("stopped")


def _say_where_to_look(ui_url: str | None, settings: Settings) -> None:
    lines = [
        "",
        "Caseclock is running. Ctrl-C stops it.",
        f"  Dashboard:            {dashboard_url(settings)} (sign in as TM-AE, a team manager)",
        f"  Temporal UI:          {ui_url or '(headless)'}",
        f"  Read model:           {settings.database.url}",
        "  Escalations:          .venv/bin/caseclock escalations",
        "  A manager's inbox:    .venv/bin/caseclock inbox TM-AE",
        "  A case's clocks:      .venv/bin/caseclock case DEMO-0004",
        "",
    ]
    print("\n".join(lines), flush=True)
