"""The benchmark harness still runs: each scenario module at toy size (no figures checked).

Benchmarks are never timed here; this only keeps ``bench/`` from rotting. The scenarios that
need a Temporal server are represented by the storm (both Temporal arms, three cases): it
goes through every shared piece (servers, worker processes, read model, SMTP, ledger
counts). The DBOS peer is left out: it is installed by ``./run bench``, not by the dev lock.
"""

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run_all, s3_storm, s7_queries, s8_simulation, scenario


def _args(module: object, *argv: str) -> argparse.Namespace:
    return scenario.parser("smoke", module.DEFAULTS).parse_args(list(argv))  # type: ignore[attr-defined]


def test_every_scenario_module_loads_and_takes_its_planned_arguments() -> None:
    for name, argv in run_all.PLAN:
        module = importlib.import_module(f"bench.{name}")
        assert module.HEADLINE
        args = _args(module, *argv)
        assert args.repeats >= 1
        _args(module, *run_all.QUICK[name])


async def test_simulation_runs_the_core_over_a_sample(tmp_path: Path) -> None:
    found = await s8_simulation.run_once(_args(s8_simulation, "--n", "20"), tmp_path)
    assert found["caseclock"]["sample_cases"] == 20


async def test_queries_run_on_a_small_sqlite_read_model(tmp_path: Path) -> None:
    args = _args(s7_queries, "--n", "400", "--arms", "sqlite")
    found = await s7_queries.run_once(args, tmp_path)
    assert "work_p99_ms" in found["sqlite"]


@pytest.mark.temporal
async def test_storm_delivers_a_tiny_storm_on_caseclock_and_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_storm, "SETUP_MARGIN_S", 6.0)
    args = _args(s3_storm, "--n", "3", "--arms", "caseclock,floor")
    found = await s3_storm.run_once(args, tmp_path)
    assert found["caseclock"]["lost"] == 0
    assert found["floor"]["lost"] == 0


def test_the_memory_census_prints_on_sigusr1() -> None:
    # As scenario 5 uses it: installed in a process, then asked for by a signal.
    script = (
        "import os, signal\n"
        "from bench import census\n"
        "census.install()\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("CENSUS ")]
    assert len(lines) == 2  # at install, and on the signal
    found = json.loads(lines[-1].removeprefix("CENSUS "))
    assert found["rss_mib"] > 0
    assert found["tracked_objects"] > 0
    assert found["types"]
