"""Check an event against the definition and the case's state before anything changes."""

import re
from datetime import date, datetime

from caseclock.calendar import local_date
from caseclock.core.events import CaseEvent, Rejection
from caseclock.core.state import CaseState
from caseclock.definition.schema import Definition, EventSpec, FieldSpec, FieldType

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_TEXT = 2000


def check_event(
    definition: Definition, state: CaseState, event: CaseEvent, now: datetime
) -> list[Rejection]:
    """Every reason the event cannot be applied now; empty when it can."""
    spec = definition.events.get(event.type)
    if spec is None:
        known = ", ".join(sorted(definition.events))
        return [
            Rejection(field="type", reason=f"unknown event type {event.type!r}; known: {known}")
        ]
    problems = _check_timing(definition, state, event, now)
    problems += _check_outcome(spec, event)
    problems += _check_fields(spec, event)
    problems += _check_stages(definition, spec, state, event)
    problems += _check_running(definition, spec, state, event)
    return problems


def _check_timing(
    definition: Definition, state: CaseState, event: CaseEvent, now: datetime
) -> list[Rejection]:
    problems = []
    if event.effective_date > local_date(now):
        problems.append(
            Rejection(
                field="effective_date",
                reason=f"{event.effective_date.isoformat()} is in the future; record events "
                "once they have happened",
            )
        )
    if event.effective_at is not None:
        if local_date(event.effective_at) != event.effective_date:
            problems.append(
                Rejection(
                    field="effective_at",
                    reason="falls on a different day (in Europe/London) from effective_date",
                )
            )
        if event.effective_at > now:
            problems.append(Rejection(field="effective_at", reason="is in the future"))
    else:
        clock = _hours_clock_needing_time(definition, state, event)
        if clock is not None:
            problems.append(
                Rejection(
                    field="effective_at",
                    reason=f"{event.type} starts or stops {clock!r}, counted in hours, so it "
                    "needs the time it happened, not only the date",
                )
            )
    return problems


def _hours_clock_needing_time(
    definition: Definition, state: CaseState, event: CaseEvent
) -> str | None:
    """The title of an hours clock this event starts, or stops while it runs, if any.

    Both ends of a period counted in hours need a time: a date alone cannot tell whether
    police protection ended within its 72 hours on the day they ran out.
    """
    for clock_id, spec in definition.clocks.items():
        if not spec.deadline.counts_hours():
            continue
        occurrence = state.clocks.get(clock_id)
        running = occurrence is not None and occurrence.running
        stops = spec.met_by + spec.cancelled_by
        candidates = spec.starts_on + (stops if running else ())
        if any(match.matches(event.type, event.outcome) for match in candidates):
            return spec.title
    return None


def _check_outcome(spec: EventSpec, event: CaseEvent) -> list[Rejection]:
    if spec.outcomes and event.outcome not in spec.outcomes:
        choices = ", ".join(spec.outcomes)
        given = "none given" if event.outcome is None else f"{event.outcome!r} given"
        return [Rejection(field="outcome", reason=f"must be one of: {choices} ({given})")]
    if not spec.outcomes and event.outcome is not None:
        return [Rejection(field="outcome", reason=f"{event.type} has no outcomes")]
    return []


def _check_fields(spec: EventSpec, event: CaseEvent) -> list[Rejection]:
    problems = [
        Rejection(field=f"data.{name}", reason=f"{event.type} has no field {name!r}")
        for name in event.data
        if name not in spec.fields
    ]
    for name, field in spec.fields.items():
        if name not in event.data:
            if field.required:
                problems.append(Rejection(field=f"data.{name}", reason="is required"))
            continue
        reason = _field_problem(field, event.data[name])
        if reason:
            problems.append(Rejection(field=f"data.{name}", reason=reason))
    return problems


def _field_problem(field: FieldSpec, value: int | str | date) -> str | None:
    if field.type is FieldType.INTEGER:
        return _integer_problem(field, value)
    if not isinstance(value, str):
        return "must be text"
    if field.type is FieldType.CHOICE and value not in field.choices:
        return f"must be one of: {', '.join(field.choices)}"
    if field.type is FieldType.CODE and not _CODE.match(value):
        return "must be a code of letters, digits, '.', '_' or '-' (at most 64)"
    if field.type is FieldType.TEXT and len(value) > _MAX_TEXT:
        return f"must be at most {_MAX_TEXT} characters"
    return None


def _integer_problem(field: FieldSpec, value: int | str | date) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be a whole number"
    if field.minimum is not None and value < field.minimum:
        return f"must be at least {field.minimum}"
    if field.maximum is not None and value > field.maximum:
        return f"must be at most {field.maximum}"
    return None


def _check_stages(
    definition: Definition, spec: EventSpec, state: CaseState, event: CaseEvent
) -> list[Rejection]:
    problems = []
    for track_id, allowed in spec.when.items():
        track = state.tracks[track_id]
        title = definition.tracks[track_id].title
        if track.stage not in allowed:
            problems.append(
                Rejection(
                    field="type",
                    reason=f"{event.type} is not allowed while {title} is at "
                    f"{track.stage!r}; it needs one of: {', '.join(allowed)}",
                )
            )
        elif track.entered_on is not None and event.effective_date < track.entered_on:
            problems.append(
                Rejection(
                    field="effective_date",
                    reason=f"{event.effective_date.isoformat()} is before {title} reached "
                    f"{track.stage!r} on {track.entered_on.isoformat()} (event {track.event_id})",
                )
            )
    return problems


def _check_running(
    definition: Definition, spec: EventSpec, state: CaseState, event: CaseEvent
) -> list[Rejection]:
    problems = []
    for clock_id in spec.requires_running:
        occurrence = state.clocks.get(clock_id)
        if occurrence is None or not occurrence.running:
            title = definition.clocks[clock_id].title
            problems.append(
                Rejection(field="type", reason=f"{event.type} needs {title!r} to be running")
            )
    for clock_id, clock in definition.clocks.items():
        extension = clock.extended_by
        occurrence = state.clocks.get(clock_id)
        if extension is None or extension.event != event.type:
            continue
        if occurrence is None or not occurrence.running:
            continue
        amount = event.data.get(extension.field)
        if isinstance(amount, int) and amount > extension.max_amount:
            problems.append(
                Rejection(
                    field=f"data.{extension.field}",
                    reason=f"an extension of {clock.title} may be at most "
                    f"{extension.max_amount} {extension.unit.value.replace('_', ' ')} "
                    f"({extension.source})",
                )
            )
        if extension.max_times is not None and occurrence.extensions_used >= extension.max_times:
            problems.append(
                Rejection(
                    field="type",
                    reason=f"{clock.title} may be extended at most {extension.max_times} "
                    f"time(s) ({extension.source})",
                )
            )
    return problems
