"""The process core: pure functions from (definition, state, event or time) to (state, actions).

``apply_event`` moves a case on; ``due_alerts`` says who must be told at a given time;
``next_wakeup`` says when that next changes, for the workflow's single durable timer.
"""

from dataclasses import dataclass
from datetime import datetime

from caseclock.calendar import CalendarRangeError, WorkingCalendar, start_of_day
from caseclock.core.actions import (
    Action,
    AlertState,
    ClockStatus,
    NotifyAction,
    RecordClockAction,
    RecordEventAction,
    RecordStageAction,
)
from caseclock.core.deadline import Extension
from caseclock.core.events import CaseEvent, EventRejectedError, Rejection, event_fingerprint
from caseclock.core.schedule import MissingAnchorError, compute_deadline, schedule_alerts
from caseclock.core.state import CaseState, EventMark, Occurrence, TrackState
from caseclock.core.validation import check_event
from caseclock.definition.schema import ClockSpec, Definition, EventMatch
from caseclock.units import Unit


@dataclass(frozen=True)
class Outcome:
    """The result of a step of the core: the new state and what the shell must now do."""

    state: CaseState
    actions: tuple[Action, ...]
    duplicate: bool = False


def start_case(definition: Definition, case_ref: str) -> CaseState:
    """A new case with every track at its initial stage and no clocks running."""
    return CaseState(
        case_ref=case_ref,
        definition_id=definition.id,
        definition_version=definition.version,
        tracks={
            track_id: TrackState(stage=track.initial)
            for track_id, track in definition.tracks.items()
        },
    )


def validate_event(
    definition: Definition,
    state: CaseState,
    event: CaseEvent,
    calendar: WorkingCalendar,
    now: datetime,
) -> None:
    """Raise EventRejectedError if the event cannot be applied now; a repeat is not an error.

    It applies the event and throws the result away: the core is pure and cheap, and this
    way nothing that ``apply_event`` would refuse can pass validation.
    """
    apply_event(definition, state, event, calendar, now)


def apply_event(
    definition: Definition,
    state: CaseState,
    event: CaseEvent,
    calendar: WorkingCalendar,
    now: datetime,
) -> Outcome:
    """Apply one event. A repeated event id changes nothing; an invalid event raises."""
    if event.event_id in state.applied_events:
        _check_repeat(state, event)
        return Outcome(state=state, actions=(), duplicate=True)
    rejections = check_event(definition, state, event, now)
    if rejections:
        raise EventRejectedError(event.type, rejections)
    try:
        return _apply(definition, state, event, calendar)
    except (CalendarRangeError, MissingAnchorError) as error:
        reason = (
            f"a deadline it sets cannot be computed with the case's calendar "
            f"({calendar.first_year} to {calendar.last_year}): {error}"
        )
        raise EventRejectedError(
            event.type, [Rejection(field="effective_date", reason=reason)]
        ) from error


def _apply(
    definition: Definition, state: CaseState, event: CaseEvent, calendar: WorkingCalendar
) -> Outcome:
    actions: list[Action] = [_record_event(state, event)]
    mark = EventMark(
        event_id=event.event_id,
        effective_date=event.effective_date,
        effective_at=event.effective_at,
    )
    latest = dict(state.latest)
    previous = latest.get(event.type)
    if previous is None or previous.effective_date <= event.effective_date:
        latest[event.type] = mark
    tracks = _move_tracks(definition, state, event, actions)
    moved = state.model_copy(
        update={
            "tracks": tracks,
            "latest": latest,
            "applied_events": {**state.applied_events, event.event_id: event_fingerprint(event)},
        }
    )
    clocks = dict(state.clocks)
    for clock_id, spec in definition.clocks.items():
        updated = _step_clock(definition, moved, clock_id, spec, event, mark, calendar)
        for occurrence in updated:
            clocks[clock_id] = occurrence
            actions.append(RecordClockAction(case_ref=state.case_ref, clock=occurrence.snapshot()))
    return Outcome(state=moved.model_copy(update={"clocks": clocks}), actions=tuple(actions))


def due_alerts(definition: Definition, state: CaseState, now: datetime) -> Outcome:
    """The alerts due at ``now`` that have not been sent, one per clock occurrence.

    Rungs that fell due together (after a late-recorded event or an outage) are sent as
    one alert at the highest rung, to the union of their roles, so nobody gets a "due soon"
    for something already overdue.
    """
    clocks = dict(state.clocks)
    actions: list[Action] = []
    for occurrence in state.running():
        due = [
            alert
            for alert in occurrence.alerts
            if alert.fire_at <= now and alert.level not in occurrence.levels_fired
        ]
        if not due:
            continue
        spec = definition.clocks[occurrence.clock_id]
        steps = definition.ladders[spec.ladder].steps
        top = max(due, key=lambda alert: alert.level)
        roles = tuple(dict.fromkeys(role for a in due for role in steps[a.level].notify))
        covered = tuple(sorted(alert.level for alert in due))
        fired = occurrence.model_copy(
            update={"levels_fired": tuple(sorted({*occurrence.levels_fired, *covered}))}
        )
        clocks[occurrence.clock_id] = fired
        actions.append(
            NotifyAction(
                key=alert_key(state.case_ref, occurrence, top.level),
                case_ref=state.case_ref,
                clock_id=occurrence.clock_id,
                clock_title=spec.title,
                occurrence=occurrence.number,
                level=top.level,
                level_name=top.name,
                covers_levels=covered,
                roles=roles,
                state=AlertState.DUE_SOON
                if steps[top.level].offset.amount < 0
                else AlertState.OVERDUE,
                fire_at=top.fire_at,
                deadline=occurrence.deadline,
                what_to_do=spec.what_to_do,
            )
        )
        actions.append(RecordClockAction(case_ref=state.case_ref, clock=fired.snapshot()))
    return Outcome(state=state.model_copy(update={"clocks": clocks}), actions=tuple(actions))


def alert_key(case_ref: str, occurrence: Occurrence, level: int) -> str:
    """The idempotency key of an alert: case, clock, occurrence (and round), level.

    An occurrence whose deadline was extended starts a new round of its ladder, written
    ``{occurrence}.{round}``.
    """
    number = str(occurrence.number)
    if occurrence.extensions_used:
        number += f".{occurrence.extensions_used}"
    return f"{case_ref}/{occurrence.clock_id}/{number}/{level}"


def next_wakeup(state: CaseState) -> datetime | None:
    """The earliest instant at which an unsent alert falls due, if any."""
    pending = [
        alert.fire_at
        for occurrence in state.running()
        for alert in occurrence.alerts
        if alert.level not in occurrence.levels_fired
    ]
    return min(pending, default=None)


def _check_repeat(state: CaseState, event: CaseEvent) -> None:
    """A resend of the same event is fine; the same id for different facts is refused."""
    first = state.applied_events[event.event_id]
    if first == event_fingerprint(event):
        return
    first_type = first.partition("#")[0]
    if first_type != event.type:
        reason = (
            f"event id {event.event_id!r} was already used for a {first_type} event; "
            "use a new id for a different event"
        )
    else:
        reason = (
            f"event id {event.event_id!r} was already used for this {first_type} event with "
            "different details (date, time, outcome or fields); a correction needs a new id"
        )
    raise EventRejectedError(event.type, [Rejection(field="event_id", reason=reason)])


def _record_event(state: CaseState, event: CaseEvent) -> RecordEventAction:
    return RecordEventAction(
        case_ref=state.case_ref,
        event_id=event.event_id,
        event_type=event.type,
        effective_date=event.effective_date,
        effective_at=event.effective_at,
        recorded_at=event.recorded_at,
        recorded_by=event.recorded_by,
        outcome=event.outcome,
    )


def _move_tracks(
    definition: Definition, state: CaseState, event: CaseEvent, actions: list[Action]
) -> dict[str, TrackState]:
    spec = definition.events[event.type]
    moves = dict(spec.then)
    if event.outcome is not None:
        moves.update(spec.outcomes.get(event.outcome, {}))
    tracks = dict(state.tracks)
    for track_id, stage in moves.items():
        if tracks[track_id].stage == stage:
            continue
        tracks[track_id] = TrackState(
            stage=stage, entered_on=event.effective_date, event_id=event.event_id
        )
        actions.append(
            RecordStageAction(
                case_ref=state.case_ref,
                track=track_id,
                stage=stage,
                entered_on=event.effective_date,
                event_id=event.event_id,
            )
        )
    return tracks


def _in_stages(state: CaseState, required: dict[str, tuple[str, ...]]) -> bool:
    return all(state.tracks[track].stage in stages for track, stages in required.items())


def _step_clock(
    definition: Definition,
    state: CaseState,
    clock_id: str,
    spec: ClockSpec,
    event: CaseEvent,
    mark: EventMark,
    calendar: WorkingCalendar,
) -> list[Occurrence]:
    """The occurrences of one clock that this event closes, changes or opens, in order."""
    current = state.clocks.get(clock_id)
    changed: list[Occurrence] = []
    start_again = False

    def matches(candidates: tuple[EventMatch, ...]) -> bool:
        return any(match.matches(event.type, event.outcome) for match in candidates)

    in_stages = _in_stages(state, spec.while_in)
    # An event dated before the occurrence began belongs to an earlier period: it is kept
    # in the record but does not touch this occurrence.
    if current is not None and current.running and event.effective_date >= current.start_date:
        if matches(spec.met_by):
            current = _close(current, _met_status(current, event), event)
            changed.append(current)
            start_again = spec.recurring
        elif matches(spec.cancelled_by):
            current = _close(current, ClockStatus.CANCELLED, event)
            changed.append(current)
        elif matches(spec.restarts_on):
            current = _close(current, ClockStatus.CANCELLED, event)
            changed.append(current)
            start_again = True
        elif not in_stages:
            pass  # leaving the clock's stages cancels it below, with the deadline it had
        elif spec.extended_by is not None and spec.extended_by.event == event.type:
            current = _extend(definition, state, current, spec, event, calendar)
            changed.append(current)
        elif any(term.from_event == event.type for term in spec.deadline.terms()):
            current = _reschedule(definition, state, current, current.deadline.extensions, calendar)
            changed.append(current)
    if current is not None and current.running and not in_stages:
        current = _close(current, ClockStatus.CANCELLED, event)
        changed.append(current)
    stopped = current is None or not current.running
    if stopped and in_stages and (start_again or matches(spec.starts_on)):
        number = 1 if current is None else current.number + 1
        changed.append(_open(definition, state, clock_id, number, event, mark, calendar))
    return changed


def _started(mark: EventMark) -> datetime:
    """The instant a clock started: the event's time, else the start of its day."""
    return mark.effective_at or start_of_day(mark.effective_date)


def _met_status(occurrence: Occurrence, event: CaseEvent) -> ClockStatus:
    deadline = occurrence.deadline
    if deadline.unit is Unit.HOURS and event.effective_at is not None:
        on_time = event.effective_at <= deadline.due_at
    else:
        on_time = event.effective_date <= deadline.due_date
    return ClockStatus.MET if on_time else ClockStatus.MET_LATE


def _close(occurrence: Occurrence, status: ClockStatus, event: CaseEvent) -> Occurrence:
    return occurrence.model_copy(
        update={
            "status": status,
            "closed_by_event_id": event.event_id,
            "closed_on": event.effective_date,
        }
    )


def _open(
    definition: Definition,
    state: CaseState,
    clock_id: str,
    number: int,
    event: CaseEvent,
    mark: EventMark,
    calendar: WorkingCalendar,
) -> Occurrence:
    deadline = compute_deadline(definition, clock_id, event.type, mark, state.latest, (), calendar)
    ladder = definition.ladders[definition.clocks[clock_id].ladder]
    return Occurrence(
        clock_id=clock_id,
        number=number,
        status=ClockStatus.RUNNING,
        start=mark,
        start_event_type=event.type,
        deadline=deadline,
        alerts=schedule_alerts(ladder, deadline, _started(mark), calendar),
    )


def _reschedule(
    definition: Definition,
    state: CaseState,
    occurrence: Occurrence,
    extensions: tuple[Extension, ...],
    calendar: WorkingCalendar,
) -> Occurrence:
    """Recompute a running occurrence's deadline (a new anchor, or an extension).

    Rungs already sent stay sent: the same (clock, occurrence, level) is never alerted twice.
    """
    deadline = compute_deadline(
        definition,
        occurrence.clock_id,
        occurrence.start_event_type,
        occurrence.start,
        state.latest,
        extensions,
        calendar,
    )
    ladder = definition.ladders[definition.clocks[occurrence.clock_id].ladder]
    return occurrence.model_copy(
        update={
            "deadline": deadline,
            "alerts": schedule_alerts(ladder, deadline, _started(occurrence.start), calendar),
        }
    )


def _extend(
    definition: Definition,
    state: CaseState,
    occurrence: Occurrence,
    spec: ClockSpec,
    event: CaseEvent,
    calendar: WorkingCalendar,
) -> Occurrence:
    assert spec.extended_by is not None  # noqa: S101 (the caller checked)
    amount = event.data[spec.extended_by.field]
    assert isinstance(amount, int)  # noqa: S101 (validated as a required integer)
    extension = Extension(event_id=event.event_id, amount=amount, unit=spec.extended_by.unit)
    extended = _reschedule(
        definition, state, occurrence, (*occurrence.deadline.extensions, extension), calendar
    )
    # An extended deadline is a new round of the ladder: its rungs are alerted afresh, under
    # keys that name the round, so no key is ever sent twice.
    return extended.model_copy(
        update={"extensions_used": occurrence.extensions_used + 1, "levels_fired": ()}
    )
