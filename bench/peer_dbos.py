"""The DBOS peer: the floor's deadline workflow written with DBOS (SQLite system database).

``deadline_workflow`` writes an "opened" row, waits for a "met" message with the deadline as
its timeout (DBOS records the timeout durably, so a restarted process resumes the wait),
writes an "alert" row in a step if the deadline came first, and then stays open like a
case. Rows go to the same table as the floor's (``bench.rows``). The process that runs it
is ``bench.peer_dbos_app``.
"""

import asyncio
import time
from pathlib import Path

from dbos import DBOS

from bench import rows

OPEN_FOR_SECONDS = 365 * 24 * 3600.0


@DBOS.step()
async def write_row_step(rows_db: str, kind: str, key: str) -> None:
    """Write one row (a thread, as the floor's activity does)."""
    await asyncio.to_thread(rows.insert, Path(rows_db), kind, key)


@DBOS.workflow()
async def deadline_workflow(key: str, due_epoch: float, rows_db: str) -> None:
    """Open, wait for the deadline or a "met" message, alert if the deadline came first."""
    await write_row_step(rows_db, "opened", key)
    met = await DBOS.recv_async("met", timeout_seconds=max(due_epoch - time.time(), 0.001))
    if met is None:
        await write_row_step(rows_db, "alert", key)
    await DBOS.recv_async("met", timeout_seconds=OPEN_FOR_SECONDS)
