"""Write the figures of the latest results into docs/BENCHMARKS.md: ``python -m bench.report``.

The block between ``<!-- figures:start -->`` and ``<!-- figures:end -->`` is replaced by one
table per scenario (median, range and runs of every headline figure, per arm), the ratios
of Caseclock to the floor and to the peer, and the load average around each run, all read
from ``bench/results/<scenario>-latest.json``. ``bench.run_all`` calls this after a full run.
The prose around the block is written by hand and says what the figures mean.
"""

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT

REPORT = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
ORDER = [
    "s1_start",
    "s2_events",
    "s3_storm",
    "s4_outage",
    "s5_memory",
    "s6_history",
    "s7_queries",
    "s8_simulation",
]


def _number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def scenario_block(result: dict[str, Any], headline: list[str]) -> list[str]:
    """The markdown of one scenario's figures."""
    lines = [f"### {result['title']}", ""]
    lines.append(
        f"n = {result['n']:,}, {result['repeats']} run(s), at {result['at']}"
        + (f", tuning: {result['tuning']}" if result.get("tuning") else "")
        + "."
    )
    lines += ["", "| arm | figure | median | range | runs |", "|---|---|---:|---|---:|"]
    for arm, figures in result["summary"].items():
        for figure in headline:
            if figure in figures:
                cell = figures[figure]
                spread = f"{_number(cell['min'])} .. {_number(cell['max'])}"
                lines.append(
                    f"| {arm} | {figure} | {_number(cell['median'])} | {spread} | {cell['n']} |"
                )
    for pair, values in result.get("ratios", {}).items():
        shown = ", ".join(f"{k} {v}" for k, v in values.items() if v is not None)
        if shown:
            lines.append(f"\nRatio {pair}: {shown}.")
    loads = "; ".join(
        f"run {load['run']}: {load['load_before'][0]} -> {load['load_after'][0]} "
        f"({load['seconds']} s)"
        for load in result.get("loads", [])
    )
    lines += ["", f"Load average (1 min) before -> after: {loads}.", ""]
    return lines


def render() -> str:
    """All scenarios' blocks, in order, from the latest results."""
    import importlib  # noqa: PLC0415 (scenario modules only when rendering)

    lines: list[str] = []
    for name in ORDER:
        path = RESULTS / f"{name}-latest.json"
        if not path.exists():
            lines += [f"### {name}", "", "(not run yet)", ""]
            continue
        result = json.loads(path.read_text())
        headline = list(importlib.import_module(f"bench.{name}").HEADLINE)
        lines += scenario_block(result, headline)
    return "\n".join(lines)


def write(report: Path = REPORT) -> None:
    """Replace the figures block of the report with the latest figures."""
    text = report.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    report.write_text(f"{before}{START}\n\n{render()}\n{END}{after}")


if __name__ == "__main__":
    write()
    print(f"figures written into {REPORT}")
