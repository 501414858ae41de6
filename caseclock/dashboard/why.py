"""Why a deadline is what it is: rule, start event, period, counting, calendar, due instant.

Every field comes from the deadline stored with the clock (``caseclock.core.deadline``), so
the answer stays the one given when the deadline was set, whatever the definitions say now.
"""

from dataclasses import dataclass
from datetime import datetime

from caseclock.dashboard.labels import COUNTING, Labels, amount
from caseclock.dashboard.templating import day, due, when
from caseclock.dashboard.timeline import clock_state
from caseclock.db.views import ClockView
from caseclock.units import Unit


@dataclass(frozen=True)
class Why:
    """Why one deadline is what it is, as rows of a summary list."""

    clock: ClockView
    state: str
    colour: str
    rows: list[tuple[str, str]]


def explain(clock: ClockView, labels: Labels, now: datetime) -> Why:
    """The rule, start event, period, counting, calendar and due instant of a deadline."""
    deadline = clock.deadline
    key = f"{deadline.definition_id}@{deadline.definition_version}"
    start = labels.event(key, deadline.start_event_type)
    started = (
        when(deadline.start_at)
        if deadline.unit is Unit.HOURS and deadline.start_at
        else day(deadline.start_date)
    )
    rows = [
        (
            "Rule",
            f"{deadline.rule_title} (rule {deadline.rule_id}, "
            f"{deadline.definition_id} version {deadline.definition_version})",
        ),
        ("Starts from", f"{start}, {started} (event {deadline.start_event_id})"),
        ("Period", amount(deadline.amount, deadline.unit)),
        (
            "Counting",
            "Elapsed hours from the start"
            if deadline.unit is Unit.HOURS
            else COUNTING[deadline.counting],
        ),
        (
            "Calendar",
            f"{deadline.calendar_id} (England and Wales bank holidays and local closure days)",
        ),
        (
            "Due",
            f"By the end of {due(deadline.due_at)}"
            if deadline.unit is not Unit.HOURS
            else due(deadline.due_at, in_hours=True),
        ),
    ]
    if deadline.window_opens_on is not None:
        rows.append(("Not before", day(deadline.window_opens_on)))
    rows += [
        (f"Extension {index}", f"{amount(ext.amount, ext.unit)} (event {ext.event_id})")
        for index, ext in enumerate(deadline.extensions, start=1)
    ]
    if deadline.basis:
        rows.append(("Basis", deadline.basis))
    if deadline.source:
        rows.append(("Source", deadline.source))
    state, colour = clock_state(clock, now)
    return Why(clock=clock, state=state, colour=colour, rows=rows)


def when_due(clock: ClockView) -> str:
    """``by the end of 3 August 2026``, or the instant for clocks counted in hours."""
    if clock.deadline.unit is Unit.HOURS:
        return f"by {due(clock.due_at, in_hours=True)}"
    return f"by the end of {due(clock.due_at)}"
