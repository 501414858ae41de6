"""``caseclock up`` from nothing: escalations reach the inbox within a minute, the dashboard
answers, and Ctrl-C stops all.

Runs the real command in a fresh data folder on free ports, as an operator would.
"""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.read_model import ReadModel
from caseclock.settings import DatabaseSettings
from tests.engine_stack import free_port
from tests.helpers import wait_until

ROOT = Path(__file__).parents[1]


async def test_up_shows_escalations_in_the_inbox_within_a_minute_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    url = f"sqlite+aiosqlite:///{data}/caseclock.db"
    api_port = free_port()
    env = {
        **os.environ,
        "CASECLOCK_DEV_SERVER__DATA_DIR": str(data),
        "CASECLOCK_DEV_SERVER__PORT": str(free_port()),
        "CASECLOCK_DEV_SERVER__UI_PORT": str(free_port()),
        "CASECLOCK_DATABASE__URL": url,
        "CASECLOCK_API__PORT": str(api_port),
        "CASECLOCK_LOG_LEVEL": "WARNING",
    }
    output = tmp_path / "up.log"
    with output.open("wb") as sink:
        up = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "caseclock.cli",
            "up",
            "--definitions",
            str(ROOT / "definitions"),
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    engine, sessions = create_engine_and_sessions(DatabaseSettings(url=url))
    read_model = ReadModel(sessions)
    try:
        # It says where to look once the read model is migrated and the demo is loaded.
        await wait_until(lambda: "Caseclock is running" in output.read_text(), timeout=60)
        text = output.read_text()
        assert "Temporal UI:" in text
        assert "caseclock escalations" in text
        assert f"Dashboard:            http://127.0.0.1:{api_port}/" in text
        # The API child serves the dashboard: its sign-in page lists the demo directory.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            sign_in = await http.get("/sign-in")
            assert sign_in.status_code == 200
            assert "Priya Patel (TM-AE)" in sign_in.text
            assert (await http.get("/api/v1/health")).status_code == 200

        async def inbox_of_team_manager() -> int:
            return len(await read_model.inbox("TM-AE"))

        await wait_until(inbox_of_team_manager, timeout=60, interval=0.5)

        async def escalated_up_the_line() -> bool:
            levels = {row.level for row in await read_model.list_escalations()}
            return {1, 2, 3} <= levels  # overdue, and escalated two rungs further

        # All within the minute the README promises, from the moment the engine started.
        await wait_until(escalated_up_the_line, timeout=60, interval=0.5)
    finally:
        up.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(up.wait(), timeout=60)
        await engine.dispose()
    assert returncode == 0, output.read_text()[-2000:]
    # Nothing left running: the dev server, the worker and the API stopped with it.
    ps = await asyncio.create_subprocess_exec("ps", "-eo", "args", stdout=subprocess.PIPE)
    listing, _ = await ps.communicate()
    assert str(data / "temporal.db") not in listing.decode()
