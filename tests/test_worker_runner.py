"""Workers run workflows outside Temporal's sandbox unless the settings ask for it.

The sandbox costs about a quarter of the worker's CPU when opening cases
(docs/BENCHMARKS.md); the test suite turns it on (tests/engine_stack.py) and replays
every recorded history in it (tests/test_replay.py), so a forbidden call still fails a test.
"""

from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from caseclock.db.alert_plan import AlertPlan
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.read_model import ReadModel
from caseclock.directory import Directory
from caseclock.settings import DatabaseSettings, Settings, TemporalSettings
from worker import build_worker


@pytest.mark.parametrize(
    ("sandbox", "expected"),
    [(False, UnsandboxedWorkflowRunner), (True, SandboxedWorkflowRunner)],
    ids=["default", "sandbox-on"],
)
async def test_the_settings_choose_the_workflow_runner(
    local_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    sandbox: bool,
    expected: type[WorkflowRunner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bytecode cache is for the sandbox, which imports the workflow modules every run.
    cached: list[list[str]] = []
    monkeypatch.setattr(
        worker, "cache_bytecode", lambda modules: cached.append([m.__name__ for m in modules])
    )
    assert Settings().temporal.workflow_sandbox is False
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/read-model.db"),
        temporal=TemporalSettings(task_queue=task_queue, workflow_sandbox=sandbox),
    )
    engine, sessions = create_engine_and_sessions(settings.database)
    try:
        async with httpx.AsyncClient() as http:
            built = build_worker(
                settings,
                local_env.client,
                ReadModel(sessions),
                Directory(sessions),
                AlertPlan(sessions),
                http,
            )
        assert type(built.config()["workflow_runner"]) is expected
        assert cached == ([["workflows.case", "workflows.sweep"]] if sandbox else [])
    finally:
        await engine.dispose()
