"""Scenario 4, outage catch-up: the worker is down while the storm falls due.

As scenario 3, but each arm's worker (the peer's process for DBOS) is killed with SIGKILL
three seconds before the storm instant and started again ``--outage`` seconds after it.
Figures: seconds from the restart until every alert is delivered (``catch_up_s``), alerts
per second over that time, lag from the instant, lost and duplicates.

Run: ``python -m bench.s4_outage --n 1000 --repeats 3 --outage 20``.
"""

import argparse
from pathlib import Path
from typing import Any

from bench import scenario
from bench.s3_storm import HEADLINE, run_arms

NAME = "s4_outage"
TITLE = "4. Outage catch-up"
DEFAULTS = {"n": 1000, "repeats": 3}
OUTAGE_S = 20.0


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """One repetition: the storm with the worker down across the instant."""
    return await run_arms(args, folder, OUTAGE_S)


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
