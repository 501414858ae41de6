"""The case, escalation and token verbs of ``caseclock``, run as an operator would.

Each command runs as a real process against the test's dev server, worker and SQLite read
model (the same settings variables an operator sets).
"""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.db.models import ApiToken, AuditEntry
from tests.api_helpers import BOOTSTRAP, DEFINITION_KEY, bearer, case_ref
from tests.engine_stack import EngineStack, engine_stack, free_port
from tests.helpers import wait_until

ROOT = Path(__file__).parents[1]
CALENDAR = build_england_and_wales_calendar(2020, 2035)


async def caseclock(
    stack: EngineStack, address: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CASECLOCK_TEMPORAL__ADDRESS": address,
        "CASECLOCK_TEMPORAL__TASK_QUEUE": stack.settings.temporal.task_queue,
        "CASECLOCK_DATABASE__URL": stack.settings.database.url,
        "CASECLOCK_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "caseclock.cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def test_cases_escalations_and_tokens_from_the_command_line(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = local_env.client.service_client.config.target_host
    ref = case_ref()
    late = CALENDAR.add_working_days(local_date(datetime.now(UTC)), -12)
    async with engine_stack(local_env.client, tmp_path) as stack:

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await caseclock(stack, address, *args)

        start = ["cases", "start", ref, "--team", "T1", "--worker", "SW-1"]
        start += ["--recorded-by", "SW-1", "--received", late.isoformat()]
        started = await run(*start)
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"{ref}: started"
        again = await run(*start)
        assert again.stdout.strip() == f"{ref}: already open with this referral"

        refused = await run(
            "cases", "event", ref, "icpc_held", "--event-id", "x1", "--recorded-by", "SW-1"
        )
        assert refused.returncode == 1
        assert "refused, nothing changed" in refused.stderr
        assert "type: icpc_held is not allowed while Child's path is at 'referral'" in (
            refused.stderr
        )

        key = f"{ref}/referral_decision/1/4"
        await wait_until(lambda: stack.read_model.list_escalations(team="T1"), timeout=15)
        listed = await run("escalations", "--team", "T1")
        assert ref in listed.stdout
        acked = await run("escalations", "ack", key, "--note", "Decision chased", "--as", "TM-1")
        assert acked.stdout.strip() == f"{key}: acknowledged by TM-1", acked.stderr

        decided = await run(
            "cases",
            "event",
            ref,
            "referral_decision",
            "--event-id",
            "d1",
            "--outcome",
            "assessment",
            "--recorded-by",
            "SW-1",
        )
        assert decided.returncode == 0, decided.stderr
        assert "stages main=assessment" in decided.stdout

        shown = await run("cases", "show", ref)
        assert shown.returncode == 0, shown.stderr
        assert "stages: main=assessment" in shown.stdout
        assert "45 working days" in shown.stdout
        assert "acknowledged by TM-1" in shown.stdout
        assert "Decision chased" in shown.stdout

        created = await run("tokens", "create", "--role", "integration", "--label", "Mosaic")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        token_id = token.split("_")[1]
        assert "shown only now" in created.stderr
        tokens = await run("tokens", "list")
        assert token_id in tokens.stdout
        assert token not in tokens.stdout
        revoked = await run("tokens", "revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        async with stack.sessions() as session:
            row = await session.get(ApiToken, token_id)
            assert row is not None
            assert row.revoked_at is not None
            actions = await session.scalars(
                select(AuditEntry.action).where(AuditEntry.case_ref == ref).order_by(AuditEntry.id)
            )
            assert list(actions) == [
                "case.start",
                "case.event.rejected",
                "escalation.acknowledge",
                "case.event",
                "case.read",
            ]


async def test_caseclock_api_migrates_serves_and_stops_on_interrupt(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CASECLOCK_TEMPORAL__ADDRESS": local_env.client.service_client.config.target_host,
        "CASECLOCK_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/fresh/caseclock.db",
        "CASECLOCK_API__PORT": str(port),
        "CASECLOCK_AUTH__BOOTSTRAP_ADMIN_TOKEN": BOOTSTRAP,
        "CASECLOCK_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caseclock.cli", "api", env=env, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with httpx.AsyncClient(base_url=base) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30, interval=0.2, message="the API ready")
            assert (await http.get("/definitions")).status_code == 401
            listed = await http.get("/definitions", headers=bearer(BOOTSTRAP))
            assert [row["key"] for row in listed.json()] == [DEFINITION_KEY]
    finally:
        process.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(process.wait(), timeout=20)
    assert returncode == 0
