"""Turn a clock's rule into a dated deadline and a ladder into alert instants."""

from datetime import datetime, timedelta

from caseclock.calendar import (
    WorkingCalendar,
    due_date,
    due_instant_after_hours,
    end_of_day,
    local_date,
    shift_date,
    start_of_day,
)
from caseclock.core.deadline import Deadline, Extension
from caseclock.core.state import EventMark, ScheduledAlert
from caseclock.definition.schema import ClockSpec, DeadlineTerm, Definition, LadderSpec, Offset
from caseclock.units import Unit


class MissingAnchorError(ValueError):
    """No term of a deadline can be measured yet (its anchor events have not happened)."""


def compute_deadline(
    definition: Definition,
    clock_id: str,
    start_type: str,
    start: EventMark,
    latest: dict[str, EventMark],
    extensions: tuple[Extension, ...],
    calendar: WorkingCalendar,
) -> Deadline:
    """The deadline of a clock occurrence started by ``start`` (an event of ``start_type``).

    Terms anchored on another event use that event's latest occurrence; a term whose anchor
    has not happened yet does not apply (it will when the anchor arrives). The soonest
    applicable term wins; lawful extensions then move the due date on.
    """
    spec = definition.clocks[clock_id]
    candidates: list[tuple[Deadline, DeadlineTerm]] = []
    for term in spec.deadline.terms():
        anchor_type = term.from_event or start_type
        anchor = start if term.from_event is None else latest.get(term.from_event)
        if anchor is None:
            continue
        candidates.append(
            (_term_deadline(definition, clock_id, spec, term, anchor_type, anchor, calendar), term)
        )
    if not candidates:
        raise MissingAnchorError(f"clock {clock_id}: no deadline term can be measured yet")
    deadline, chosen = min(candidates, key=lambda candidate: candidate[0].due_at)
    if len(spec.deadline.terms()) > 1:
        deadline = deadline.model_copy(update={"basis": _sooner_basis(spec, chosen)})
    if spec.deadline.window_opens is not None:
        window = spec.deadline.window_opens
        opens = due_date(deadline.start_date, window.amount, window.unit, window.counting, calendar)
        deadline = deadline.model_copy(update={"window_opens_on": opens})
    for extension in extensions:
        deadline = _extend(deadline, extension, calendar)
    return deadline


def _term_deadline(
    definition: Definition,
    clock_id: str,
    spec: ClockSpec,
    term: DeadlineTerm,
    anchor_type: str,
    anchor: EventMark,
    calendar: WorkingCalendar,
) -> Deadline:
    if term.unit is Unit.HOURS:
        # Hours run in real elapsed time from the instant, whatever the clocks do.
        started = anchor.effective_at or start_of_day(anchor.effective_date)
        due_at = due_instant_after_hours(started, term.amount)
        due_on = local_date(due_at)
    else:
        due_on = due_date(anchor.effective_date, term.amount, term.unit, term.counting, calendar)
        due_at = end_of_day(due_on)
    return Deadline(
        rule_id=clock_id,
        rule_title=spec.title,
        definition_id=definition.id,
        definition_version=definition.version,
        start_event_type=anchor_type,
        start_event_id=anchor.event_id,
        start_date=anchor.effective_date,
        start_at=anchor.effective_at if term.unit is Unit.HOURS else None,
        amount=term.amount,
        unit=term.unit,
        counting=term.counting,
        calendar_id=calendar.calendar_id,
        due_date=due_on,
        due_at=due_at,
        source=spec.source,
    )


def _sooner_basis(spec: ClockSpec, chosen: DeadlineTerm) -> str:
    parts = [
        f"{term.amount} {term.unit.value.replace('_', ' ')} from {term.from_event or 'the start'}"
        for term in spec.deadline.terms()
    ]
    return (
        "Whichever is sooner of: "
        + "; ".join(parts)
        + f" (the sooner is {chosen.amount} "
        + (f"{chosen.unit.value.replace('_', ' ')} from {chosen.from_event or 'the start'})")
    )


def _extend(deadline: Deadline, extension: Extension, calendar: WorkingCalendar) -> Deadline:
    """An extension runs on from the end of the current period (Children Act 1989 s32(5))."""
    if extension.unit is Unit.HOURS:
        due_at = deadline.due_at + timedelta(hours=extension.amount)
        due_on = local_date(due_at)
    else:
        due_on = shift_date(deadline.due_date, extension.amount, extension.unit, calendar)
        due_at = end_of_day(due_on)
    return deadline.model_copy(
        update={
            "due_date": due_on,
            "due_at": due_at,
            "extensions": (*deadline.extensions, extension),
        }
    )


def schedule_alerts(
    ladder: LadderSpec, deadline: Deadline, started: datetime, calendar: WorkingCalendar
) -> tuple[ScheduledAlert, ...]:
    """The instant of every rung of a ladder for one deadline that started at ``started``.

    Offset zero is the deadline itself; other offsets fire at the end of the day that many
    units before or after the due date, except hours, which count from the due instant.
    A warning that would fire before the clock even started is left out: a one-day clock
    is "due soon" from the moment it starts, and saying so at once is noise.
    """
    alerts = []
    for level, step in enumerate(ladder.steps):
        fire_at = _rung_instant(step.offset, deadline, calendar)
        if step.offset.amount < 0 and fire_at <= started:
            continue
        alerts.append(ScheduledAlert(level=level, name=step.name, fire_at=fire_at))
    return tuple(alerts)


def _rung_instant(offset: Offset, deadline: Deadline, calendar: WorkingCalendar) -> datetime:
    if offset.amount == 0:
        return deadline.due_at
    if offset.unit is Unit.HOURS:
        return deadline.due_at + timedelta(hours=offset.amount)
    total = deadline.amount + offset.amount
    if offset.unit is deadline.unit is Unit.MONTHS and not deadline.extensions and total >= 1:
        # "15 months into a plan" counts from its start, not back from a due date that a
        # month end may have clamped (a plan from 31 August is due 29 February).
        months = due_date(deadline.start_date, total, Unit.MONTHS, deadline.counting, calendar)
        return end_of_day(months)
    return end_of_day(shift_date(deadline.due_date, offset.amount, offset.unit, calendar))
