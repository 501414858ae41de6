"""Run every scenario with the sizes of docs/BENCHMARKS.md: ``python -m bench.run_all``.

Each scenario prints its table and writes its JSON under ``bench/results/``; this prints a
summary of the headline medians and ratios at the end and writes ``run_all-*.json``. The
default sizes keep the whole run under about 20 minutes on a 2-core machine; ``--quick``
runs everything at toy size (what ``tests/test_bench_smoke.py`` does, scenario by
scenario), and ``--only s3_storm,s4_outage`` picks scenarios.
"""

import argparse
import asyncio
import importlib
import time
from pathlib import Path
from typing import Any

from bench import report, scenario
from bench.common import have_dbos, load_average, machine, write_result

# (module, arguments) in the order they run; sizes chosen for ~20 minutes in all.
PLAN: list[tuple[str, list[str]]] = [
    ("s8_simulation", ["--n", "10000", "--repeats", "3"]),
    ("s6_history", ["--repeats", "1"]),
    ("s1_start", ["--n", "500", "--repeats", "3"]),
    ("s2_events", ["--n", "150", "--repeats", "3"]),
    ("s3_storm", ["--n", "500", "--repeats", "3"]),
    ("s4_outage", ["--n", "500", "--repeats", "1"]),
    ("s5_memory", ["--n", "2400", "--repeats", "1"]),
    ("s7_queries", ["--n", "1000000", "--repeats", "1"]),
]
QUICK: dict[str, list[str]] = {
    "s1_start": ["--n", "20", "--repeats", "1"],
    "s2_events": ["--n", "10", "--repeats", "1"],
    "s3_storm": ["--n", "20", "--repeats", "1"],
    "s4_outage": ["--n", "10", "--repeats", "1"],
    "s5_memory": ["--n", "30", "--repeats", "1"],
    "s6_history": ["--repeats", "1"],
    "s7_queries": ["--n", "2000", "--repeats", "1"],
    "s8_simulation": ["--n", "50", "--repeats", "1"],
}


async def run_module(name: str, argv: list[str]) -> dict[str, Any]:
    """Run one scenario module with the given arguments."""
    module = importlib.import_module(f"bench.{name}")
    args = scenario.parser(name, module.DEFAULTS).parse_args(argv)
    if not have_dbos() and "dbos" in args.arms:
        args.arms = ",".join(arm for arm in args.arms.split(",") if arm != "dbos")
        print(f"  ({name}: dbos is not installed; run ./run bench to install the peer)")
    return await scenario.run_scenario(name, module.TITLE, args, module.run_once, module.HEADLINE)


async def run_all(only: list[str] | None, quick: bool, out: Path | None) -> dict[str, Any]:
    """Run the plan (or part of it) and collect the headline figures."""
    collected: dict[str, Any] = {}
    began = time.monotonic()
    load_before = load_average()
    for name, argv in PLAN:
        if only and name not in only:
            continue
        chosen = QUICK[name] if quick else argv
        if out is not None:
            chosen = [*chosen, "--out", str(out)]
        print(f"\n=== {name} {' '.join(chosen)}", flush=True)
        started = time.monotonic()
        result = await run_module(name, chosen)
        collected[name] = {
            "title": result["title"],
            "n": result["n"],
            "repeats": result["repeats"],
            "summary": result["summary"],
            "ratios": result["ratios"],
            "loads": result["loads"],
            "seconds": round(time.monotonic() - started, 1),
        }
    total = round(time.monotonic() - began, 1)
    print(f"\nAll scenarios: {total} s; load {load_before} -> {load_average()}")
    payload = {"total_seconds": total, "scenarios": collected, "quick": quick}
    path = write_result("run_all", payload, out)
    print(f"written: {path}")
    if not quick and not only and out is None:
        report.write()
        print(f"figures written into {report.REPORT}")
    return payload


def main() -> None:
    """Parse the arguments and run."""
    parse = argparse.ArgumentParser(prog="python -m bench.run_all")
    parse.add_argument("--only", default="", help="comma-separated scenario modules")
    parse.add_argument("--quick", action="store_true", help="toy sizes, one run each")
    parse.add_argument("--out", type=Path, default=None, help="results folder")
    args = parse.parse_args()
    print("machine:", machine())
    only = [name for name in args.only.split(",") if name] or None
    asyncio.run(scenario.cancel_on_sigterm(run_all(only, args.quick, args.out)))


if __name__ == "__main__":
    main()
