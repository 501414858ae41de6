"""Line charts of the performance measures, as geometry for an inline SVG.

One line per team across the months, each team with its own marker shape as well as its
own colour (colour is never the only difference), and the national figure as a dashed
line where there is one. The picture's text alternative is a summary in words; the table
under each chart gives every figure.
"""

import re
from dataclasses import dataclass, field
from datetime import date

from caseclock.db.performance import Measure, MeasureRow

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 700, 20, 228
SHAPES = ("circle", "square", "triangle", "diamond")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")


@dataclass(frozen=True)
class Point:
    """A month's value of one team, where it is drawn and what it says."""

    x: float
    y: float
    marker: str
    label: str


@dataclass(frozen=True)
class Series:
    """One team's line."""

    name: str
    index: int
    shape: str
    points: list[Point]
    path: str


@dataclass
class LineChart:
    """Everything the SVG template draws for one measure."""

    measure: Measure
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str, str]] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    national: tuple[float, str] | None = None
    description: str = ""


def national_percent(measure: Measure) -> float | None:
    """The national figure of a percentage measure, if it has one."""
    if measure.unit != "percent" or not measure.national:
        return None
    found = _PERCENT.search(measure.national)
    return float(found.group(1)) if found else None


def marker_path(shape: str, x: float, y: float, size: float = 5.0) -> str:
    """An SVG path for a marker of this shape centred on (x, y)."""
    s = size
    if shape == "square":
        return f"M{x - s:.1f} {y - s:.1f}h{2 * s:.1f}v{2 * s:.1f}h{-2 * s:.1f}z"
    if shape == "triangle":
        return f"M{x:.1f} {y - s - 1:.1f}L{x + s + 1:.1f} {y + s:.1f}H{x - s - 1:.1f}z"
    if shape == "diamond":
        return (
            f"M{x:.1f} {y - s - 1:.1f}L{x + s + 1:.1f} {y:.1f}L{x:.1f} {y + s + 1:.1f}"
            f"L{x - s - 1:.1f} {y:.1f}z"
        )
    return (
        f"M{x - s:.1f} {y:.1f}a{s:.1f} {s:.1f} 0 1 0 {2 * s:.1f} 0"
        f"a{s:.1f} {s:.1f} 0 1 0 {-2 * s:.1f} 0"
    )


def format_value(row: MeasureRow, measure: Measure) -> str:
    """A figure in words: ``80% (4 of 5)``, ``3.5 hours (4 acknowledged)``."""
    if row.value is None:
        return "none"
    if measure.unit == "hours":
        return f"{row.value:g} hours ({row.denominator} acknowledged)"
    return f"{row.value:g}% ({row.numerator} of {row.denominator})"


def month_name(month: str) -> str:
    """``2026-07`` -> ``July 2026``."""
    year, number = month.split("-")
    return f"{date(int(year), int(number), 1):%B} {year}"


def _scale_max(rows: list[MeasureRow], measure: Measure) -> float:
    if measure.unit == "percent":
        return 100.0
    top = max((row.value or 0.0 for row in rows), default=0.0)
    for nice in (1, 2, 5, 10, 12, 24, 48, 72, 96, 168, 336, 720):
        if top <= nice:
            return float(nice)
    return float(int(top) + 1)


def line_chart(
    measure: Measure, rows: list[MeasureRow], months: list[str], teams: dict[str, str]
) -> LineChart:
    """The chart of one measure: ``rows`` for it, ``months`` in order, team names by code."""
    result = LineChart(measure=measure)
    top_value = _scale_max(rows, measure)
    unit = "%" if measure.unit == "percent" else " h"

    def y_of(value: float) -> float:
        return round(BOTTOM - value / top_value * (BOTTOM - TOP), 1)

    step = (RIGHT - LEFT) / max(1, len(months))

    def x_of(index: int) -> float:
        return round(LEFT + (index + 0.5) * step, 1)

    result.y_ticks = [(y_of(top_value * i / 4), f"{top_value * i / 4:g}{unit}") for i in range(5)]
    every = 1 if len(months) <= 12 else 2
    for index, month in enumerate(months):
        if index % every == 0:
            year, number = month.split("-")
            name = month_name(month)[:3]
            show_year = index == 0 or number == "01"
            result.x_labels.append((x_of(index), name, year if show_year else ""))
    position = {month: index for index, month in enumerate(months)}
    by_team: dict[str, list[MeasureRow]] = {}
    for row in rows:
        if row.month in position:
            by_team.setdefault(row.team, []).append(row)
    summaries = []
    for index, team in enumerate(sorted(by_team)):
        shape = SHAPES[index % len(SHAPES)]
        points, path, previous = [], [], None
        for row in sorted(by_team[team], key=lambda row: row.month):
            if row.value is None:
                previous = None
                continue
            x, y = x_of(position[row.month]), y_of(row.value)
            points.append(
                Point(
                    x,
                    y,
                    marker_path(shape, x, y),
                    f"{teams.get(team, team)}, "
                    f"{month_name(row.month)}: {format_value(row, measure)}",
                )
            )
            adjacent = previous is not None and position[row.month] - previous == 1
            path.append(f"{'L' if adjacent else 'M'}{x} {y}")
            previous = position[row.month]
        name = teams.get(team, team)
        result.series.append(Series(name, index % 8, shape, points, " ".join(path)))
        latest = max(
            (r for r in by_team[team] if r.value is not None), key=lambda r: r.month, default=None
        )
        if latest is not None:
            summaries.append(
                f"{name}: latest {month_name(latest.month)}, {format_value(latest, measure)}"
            )
    national = national_percent(measure)
    if national is not None:
        result.national = (y_of(national), f"England {national:g}%")
    period = f"{month_name(months[0])} to {month_name(months[-1])}" if months else ""
    text = [f"{measure.title}, {period}, one line per team."]
    text += [f"{summary}." for summary in summaries] or ["No figures in this period."]
    if national is not None:
        text.append(f"The national figure, {national:g}%, is the dashed line.")
    text.append("The table below gives every figure.")
    result.description = " ".join(text)
    return result
