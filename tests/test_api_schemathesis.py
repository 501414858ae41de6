"""Schemathesis against the OpenAPI document: generated requests never get a server error.

The API is served for real (uvicorn on loopback) over the real engine, and every operation of
its OpenAPI document is called with generated requests as an admin, who may call all of
them. Hypothesis runs in a thread, so the event loop keeps serving the app meanwhile.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from temporalio.testing import WorkflowEnvironment

from tests.api_helpers import Api, api_client, api_settings
from tests.engine_stack import engine_stack
from tests.test_api_cases import served

EXAMPLES_PER_OPERATION = 30


@pytest_asyncio.fixture
async def api(local_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Api]:
    async with engine_stack(local_env.client, tmp_path) as stack:
        tokens = {"admin": ("admin", None)}
        async with api_client(
            api_settings(stack.settings), stack.client, stack.sessions, tokens
        ) as a:
            yield a


def _fuzz(
    document: dict[str, Any], base_url: str, headers: dict[str, str], statuses: Counter[int]
) -> dict[str, str]:
    """Call every operation with generated requests; the failures by operation."""
    schema = schemathesis.openapi.from_dict(document)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=base_url, headers=headers, checks=[not_a_server_error]
            )
            statuses[response.status_code] += 1

        try:
            call()
        except Exception as error:  # collected, so that every operation is tried
            failures[operation.label] = f"{type(error).__name__}: {error}"[:2000]
    return failures


async def test_generated_requests_never_get_a_server_error(api: Api) -> None:
    document = api.app.openapi()
    statuses: Counter[int] = Counter()
    async with served(api.app) as base_url:
        failures = await asyncio.to_thread(_fuzz, document, base_url, api.as_("admin"), statuses)
    assert failures == {}
    # The requests got through authentication, and both succeeded and were refused.
    assert statuses[200] > 0
    assert statuses[422] > 0
    assert statuses[401] == 0, statuses
