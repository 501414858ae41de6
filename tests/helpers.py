"""Helpers shared by tests: polling with a deadline, and search attributes for a server."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client

from caseclock.search_attributes import SEARCH_ATTRIBUTES

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value, or fail after ``timeout`` seconds.

    Args:
        predicate: A function or coroutine function; its truthy result ends the wait.
        timeout: Seconds before giving up.
        interval: Seconds between polls.
        message: What is awaited, for the error.

    Returns:
        The first truthy result, so a test can poll for a value and use it.

    Raises:
        TimeoutError: The predicate stayed falsy until the deadline.

    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            msg = f"{message} not met within {timeout:g}s (last result: {result!r})"
            raise TimeoutError(msg)
        await asyncio.sleep(interval)


async def register_search_attributes(client: Client) -> None:
    """Give a server Caseclock's search attributes; re-adding one is a no-op.

    The dev server gets them at start-up; the time-skipping server and an external server
    need this.
    """
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
