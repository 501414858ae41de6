"""The DBOS peer's process: launch DBOS (recovering pending workflows), start some, serve.

``python -m bench.peer_dbos_app SYSDB ROWS_DB [--start N --prefix P --due EPOCH]`` prints one
JSON line once it has launched and one once it has started its workflows, then runs until
SIGTERM (or SIGKILL, in the outage scenario).
"""

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

from dbos import DBOS, SetWorkflowID

from bench import rows
from bench.peer_dbos import deadline_workflow

START_CONCURRENCY = 50


async def main() -> None:
    """Launch, start the asked-for workflows, and wait for a signal to stop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("sysdb")
    parser.add_argument("rows_db")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--prefix", default="case")
    parser.add_argument("--due", type=float, default=0.0)
    args = parser.parse_args()
    rows.connect(Path(args.rows_db)).close()
    DBOS(
        config={
            "name": "caseclock-bench-peer",
            "system_database_url": f"sqlite:///{args.sysdb}",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    print(json.dumps({"launched": time.time()}), flush=True)
    began = time.monotonic()
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def start(number: int) -> None:
        async with gate:
            with SetWorkflowID(f"{args.prefix}-{number}"):
                await DBOS.start_workflow_async(
                    deadline_workflow, f"{args.prefix}-{number}", args.due, args.rows_db
                )

    await asyncio.gather(*(start(number) for number in range(args.start)))
    print(json.dumps({"started": args.start, "seconds": time.monotonic() - began}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    DBOS.destroy()


if __name__ == "__main__":
    asyncio.run(main())
