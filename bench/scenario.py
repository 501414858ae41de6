"""The frame every scenario module shares: arguments, repeats, load averages, results.

A scenario module defines ``NAME``, ``DEFAULTS`` and ``async def run_once(args, folder)``
returning ``{arm: {figure: value}}``; :func:`main` repeats it, records the load average
around each repetition, prints the medians and ranges, and writes the JSON.
"""

import argparse
import asyncio
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import load_average, print_table, ratio, settings_facts, spread, write_result

RunOnce = Callable[[argparse.Namespace, Path], Awaitable[dict[str, dict[str, Any]]]]
ARMS = ("caseclock", "floor", "dbos")


def parser(name: str, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """Arguments common to every scenario, with the scenario's defaults."""
    parse = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parse.add_argument("--n", type=int, default=defaults.get("n", 0), help="size")
    parse.add_argument("--repeats", type=int, default=defaults.get("repeats", 3))
    if "steps" in defaults:
        parse.add_argument(
            "--steps", type=int, default=defaults["steps"], help="reach n in this many equal steps"
        )
    parse.add_argument("--arms", default=",".join(defaults.get("arms", ARMS)))
    parse.add_argument(
        "--tuning",
        default="",
        help="settings to try: runner,sync,workers=K,cache=K,noemail (bench.caseclock_worker)",
    )
    parse.add_argument("--out", type=Path, default=None, help="results folder")
    parse.add_argument("--keep", action="store_true", help="keep the temporary folders")
    return parse


def summarise(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Median and range of every numeric figure of every arm over the repetitions."""
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        for arm, figures in run.items():
            for figure, value in figures.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    summary.setdefault(arm, {}).setdefault(figure, []).append(value)
    return {
        arm: {figure: spread(values) for figure, values in figures.items()}
        for arm, figures in summary.items()
    }


def ratios(
    summary: dict[str, dict[str, Any]], figures: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """Caseclock's median over the floor's and over the peer's, for the headline figures."""
    found: dict[str, dict[str, float | None]] = {}
    ours = summary.get("caseclock", {})
    for other in ("floor", "dbos"):
        theirs = summary.get(other, {})
        for figure in figures:
            if figure in ours and figure in theirs:
                value = ratio(ours[figure]["median"], theirs[figure]["median"])
                found.setdefault(f"caseclock/{other}", {})[figure] = value
    return found


def show(title: str, summary: dict[str, dict[str, Any]], figures: Sequence[str]) -> None:
    """Print one row per arm and figure: median, range, repetitions."""
    table = []
    for arm, values in summary.items():
        for figure in figures:
            if figure in values:
                cell = values[figure]
                spread_text = f"{cell['min']:g} .. {cell['max']:g}"
                table.append([arm, figure, f"{cell['median']:g}", spread_text, cell["n"]])
    print_table(title, ["arm", "figure", "median", "range", "runs"], table)


async def repeat(args: argparse.Namespace, run_once: RunOnce) -> dict[str, Any]:
    """Run a scenario ``args.repeats`` times, each in a fresh temporary folder."""
    runs: list[dict[str, dict[str, Any]]] = []
    loads: list[dict[str, Any]] = []
    for number in range(args.repeats):
        before = load_average()
        began = time.monotonic()
        folder = Path(tempfile.mkdtemp(prefix="caseclock-bench-"))
        result = await run_once(args, folder)
        runs.append(result)
        loads.append(
            {
                "run": number + 1,
                "load_before": before,
                "load_after": load_average(),
                "seconds": round(time.monotonic() - began, 1),
                "folder": str(folder) if args.keep else None,
            }
        )
        if not args.keep:
            _remove(folder)
    return {"runs": runs, "loads": loads}


def _remove(folder: Path) -> None:
    import shutil  # noqa: PLC0415 (only needed at the end of a repetition)

    shutil.rmtree(folder, ignore_errors=True)


def main(
    name: str,
    title: str,
    defaults: dict[str, Any],
    run_once: RunOnce,
    headline: Sequence[str],
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Parse arguments, repeat the scenario, print its table and write its JSON."""
    args = parser(name, defaults).parse_args(argv)
    return asyncio.run(cancel_on_sigterm(run_scenario(name, title, args, run_once, headline)))


async def cancel_on_sigterm(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Run ``work``; SIGTERM cancels it, so servers and workers it started are stopped."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


async def run_scenario(
    name: str,
    title: str,
    args: argparse.Namespace,
    run_once: RunOnce,
    headline: Sequence[str],
) -> dict[str, Any]:
    """Repeat, summarise, print and write one scenario (also used by ``run_all``)."""
    repeated = await repeat(args, run_once)
    summary = summarise(repeated["runs"])
    figures = [f for f in headline if any(f in values for values in summary.values())]
    show(f"{title} (n={args.n}, {args.repeats} runs)", summary, figures)
    found_ratios = ratios(summary, figures)
    for pair, values in found_ratios.items():
        print(f"  {pair}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    for load in repeated["loads"]:
        print(
            f"  run {load['run']}: load {load['load_before']} -> {load['load_after']}, "
            f"{load['seconds']} s"
        )
    payload = {
        "title": title,
        "n": args.n,
        "repeats": args.repeats,
        "arms": args.arms,
        "tuning": args.tuning,
        "settings": settings_facts(),
        "summary": summary,
        "ratios": found_ratios,
        **repeated,
    }
    path = write_result(name, payload, args.out)
    print(f"  written: {path}")
    return payload
