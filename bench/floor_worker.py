"""Entry point of the floor's worker: ``python -m bench.floor_worker ADDRESS QUEUE ROWS_DB``.

Set ``BENCH_TUNED_WORKER=1`` for the unsandboxed runner and autoscaling pollers.
"""

import asyncio
import os
import signal
import sys
from pathlib import Path

from temporalio.client import Client

from bench.floor import build_floor_worker


async def serve(address: str, task_queue: str, rows_db: Path) -> None:
    """Serve the floor workflow until SIGINT or SIGTERM."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tuned = os.environ.get("BENCH_TUNED_WORKER") == "1"
    async with build_floor_worker(client, task_queue, rows_db, tuned):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
