"""Recorded histories of every released CaseWorkflow version replay on today's code.

A change to the workflow that would break cases already in flight (a different command
order, a new activity in the middle of a run) fails here; such changes must go through
``workflow.patched()``. Record a new version with ``python -m tests.histories.record V``.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from caseclock.codec import data_converter
from caseclock.settings import EncryptionSettings
from workflows.case import CaseWorkflow
from workflows.sweep import AlertSweepWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*/*.json"))


def test_there_are_recorded_histories_to_replay() -> None:
    # Continue-as-new, a rejected update and a closed case are all in the recording.
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES],
    ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES],
)
@pytest.mark.parametrize(
    "runner",
    [SandboxedWorkflowRunner(), UnsandboxedWorkflowRunner()],
    ids=["in-the-sandbox", "as-workers-run"],
)
async def test_recorded_history_replays_without_nondeterminism(
    history: WorkflowHistory, runner: WorkflowRunner
) -> None:
    # In the sandbox a call it forbids (a clock, I/O, randomness) fails the replay; without
    # it, as production workers run (caseclock/settings.py, workflow_sandbox), it replays too.
    replayer = Replayer(
        workflows=[CaseWorkflow, AlertSweepWorkflow],
        data_converter=data_converter(EncryptionSettings()),
        workflow_runner=runner,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
