"""Helpers shared by tests: polling with a deadline instead of bare sleeps."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
