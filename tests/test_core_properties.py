"""Properties of the core over random histories drawn from the child-protection definition.

A history is a list of steps: an event recorded at an instant (of a random type, mostly one
the case's stages allow, with outcomes and fields drawn from the definition and sometimes
wrong, dated a random number of days before it is recorded), or a tick of time at which the
workflow asks what alerts are due. Each history is run through the core and checked step by
step, then run again to check that the core is deterministic.
"""

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import event as label
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from caseclock.calendar import (
    WorkingCalendar,
    end_of_day,
    local_date,
    start_of_day,
)
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.actions import Action, ClockStatus, NotifyAction
from caseclock.core.engine import apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent, EventRejectedError, FieldValue, Rejection
from caseclock.core.state import CaseState
from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition, EventSpec, FieldType
from caseclock.units import Unit

DEFINITION_FILE = Path(__file__).parent.parent / "definitions" / "child-protection.yaml"
CASE_REF = "CP-PROP"
MAX_STEPS = 40
# The default run stays fast; set this to search harder (say 5000) before a release.
EXAMPLES = int(os.environ.get("CASECLOCK_PROPERTY_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return build_england_and_wales_calendar(2000, 2045)


# --- Steps of a history ----------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """An event recorded at its ``recorded_at`` instant."""

    event: CaseEvent


@dataclass(frozen=True)
class Tick:
    """The workflow wakes at ``at`` and sends the alerts due."""

    at: datetime


Step = Record | Tick
# What one step produced: the rejections of a refused event, or the state and actions.
Result = tuple[Rejection, ...] | tuple[str, tuple[Action, ...]]


def through_temporal(state: CaseState) -> CaseState:
    """The state as a continued-as-new workflow gets it back from Temporal's data converter."""
    converter = pydantic_data_converter.payload_converter
    (restored,) = converter.from_payloads(converter.to_payloads([state]), [CaseState])
    assert isinstance(restored, CaseState)
    return restored


def rarely(data: st.DataObject, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks towards False (the ordinary case)."""
    return data.draw(st.integers(1, one_in)) == one_in


def allowed_now(definition: Definition, state: CaseState) -> list[str]:
    return [
        event_type
        for event_type, spec in definition.events.items()
        if all(state.tracks[track].stage in stages for track, stages in spec.when.items())
    ]


def moves_or_needs(spec: EventSpec, track: str) -> bool:
    """Whether an event is allowed by, or moves, a track's stage."""
    return (
        track in spec.when
        or track in spec.then
        or any(track in moves for moves in spec.outcomes.values())
    )


def draw_outcome(data: st.DataObject, spec: EventSpec) -> str | None:
    wrong = rarely(data, 20)
    if spec.outcomes and not wrong:
        return data.draw(st.sampled_from(sorted(spec.outcomes)))
    if wrong:
        return data.draw(st.sampled_from([None, "not_an_outcome"]))
    return None


def draw_fields(data: st.DataObject, spec: EventSpec) -> dict[str, FieldValue]:
    values: dict[str, FieldValue] = {}
    for name, field_spec in spec.fields.items():
        if rarely(data, 20):
            continue  # a required field left out
        if field_spec.type is FieldType.INTEGER:
            low = (field_spec.minimum or 1) - 1
            high = (field_spec.maximum or 10) + 1
            values[name] = data.draw(st.integers(low, high))
        elif field_spec.type is FieldType.CHOICE:
            values[name] = data.draw(st.sampled_from([*field_spec.choices, "not_a_choice"]))
        else:
            values[name] = data.draw(st.sampled_from(["code-1", "x" * 3]))
    if rarely(data, 30):
        values["not_a_field"] = 1
    return values


def draw_effective_date(data: st.DataObject, today: date) -> date:
    kind = data.draw(st.integers(0, 19))
    if kind < 12:
        return today
    if kind < 17:
        return today - timedelta(days=data.draw(st.integers(1, 7)))
    if kind < 19:
        return today - timedelta(days=data.draw(st.integers(8, 60)))
    return today + timedelta(days=1)  # in the future: refused


def draw_effective_at(data: st.DataObject, on: date, now: datetime) -> datetime | None:
    """A time on the London day ``on``, no later than ``now``; sometimes none at all."""
    if rarely(data, 4):
        return None
    day_starts = start_of_day(on)
    latest = min(end_of_day(on), now) - day_starts
    minutes = int(latest.total_seconds() // 60) - 1
    if minutes < 0:
        return None
    return day_starts + timedelta(minutes=data.draw(st.integers(0, minutes)))


def draw_step(
    data: st.DataObject,
    definition: Definition,
    state: CaseState,
    now: datetime,
    applied: dict[str, CaseEvent],
    focus: str | None,
) -> Step:
    if rarely(data, 3):
        wakeup = next_wakeup(state)
        if wakeup is not None and wakeup > now and data.draw(st.booleans()):
            return Tick(at=wakeup)  # exactly when the next rung falls due
        minutes = data.draw(st.sampled_from([1, 60, 6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60]))
        return Tick(at=now + timedelta(minutes=data.draw(st.integers(1, minutes))))

    recorded_at = now + timedelta(minutes=data.draw(st.integers(0, 8 * 60)))
    if applied and rarely(data, 10):
        # The case system sends an event again, unchanged but for when it was sent.
        again = applied[data.draw(st.sampled_from(sorted(applied)))]
        return Record(event=again.model_copy(update={"recorded_at": recorded_at}))
    choice = data.draw(st.integers(0, 9))
    allowed = allowed_now(definition, state)
    focused = [t for t in allowed if focus and moves_or_needs(definition.events[t], focus)]
    if focused and not rarely(data, 4):
        allowed = focused
    if choice < 8 and allowed:
        event_type = data.draw(st.sampled_from(allowed))
    elif choice < 9:
        event_type = data.draw(st.sampled_from(sorted(definition.events)))
    else:
        event_type = "not_an_event"
    spec = definition.events.get(event_type, EventSpec(title="unknown"))
    effective_date = draw_effective_date(data, local_date(recorded_at))
    if applied and rarely(data, 10):
        event_id = data.draw(st.sampled_from(sorted(applied)))  # reused, maybe for another type
    else:
        event_id = f"ev-{len(applied) + 1}"
    return Record(
        event=CaseEvent(
            event_id=event_id,
            type=event_type,
            effective_date=effective_date,
            effective_at=draw_effective_at(data, effective_date, recorded_at),
            recorded_at=recorded_at,
            recorded_by="sw-17",
            outcome=draw_outcome(data, spec),
            data=draw_fields(data, spec),
        )
    )


# --- Running a history and checking it -------------------------------------------------


@dataclass
class Run:
    """Runs steps through the core as the workflow would, checking every invariant."""

    definition: Definition
    calendar: WorkingCalendar
    state: CaseState
    now: datetime
    script: list[Step] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    applied: dict[str, CaseEvent] = field(default_factory=dict)
    sent_keys: set[str] = field(default_factory=set)
    last_level: dict[tuple[str, int, int], int] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    collapsed: list[int] = field(default_factory=list)
    stages_seen: set[str] = field(default_factory=set)
    # Continue as new before every step: the state only ever comes back from the converter.
    continue_as_new: bool = False

    def step(self, step: Step) -> None:
        self.script.append(step)
        if self.continue_as_new:
            self.state = through_temporal(self.state)
        if isinstance(step, Tick):
            self.now = step.at
            self.results.append(self._alerts())
            return
        event = step.event
        self.now = event.recorded_at
        before = self.state
        before_json = before.model_dump_json()
        try:
            outcome = apply_event(self.definition, before, event, self.calendar, self.now)
        except EventRejectedError as error:
            # Nothing changed, not even inside the state's dicts.
            assert before.model_dump_json() == before_json
            assert before == CaseState.model_validate_json(before_json)
            self.results.append(tuple(error.rejections))
            return
        if event.event_id in before.applied_events:
            assert outcome.duplicate
            assert outcome.state == before
            assert outcome.actions == ()
        else:
            assert not outcome.duplicate
            self.applied[event.event_id] = event
        self.state = outcome.state
        self._check_state()
        # A repeat of the event just applied is a no-op.
        repeat = apply_event(self.definition, self.state, event, self.calendar, self.now)
        assert (repeat.duplicate, repeat.state, repeat.actions) == (True, self.state, ())
        self.results.append((self.state.model_dump_json(), outcome.actions))
        # The workflow sends what a late-recorded event made due straight away.
        self.results.append(self._alerts())

    def _alerts(self) -> tuple[str, tuple[Action, ...]]:
        before = self.state
        outcome = due_alerts(self.definition, before, self.now)
        notified: set[tuple[str, int, int]] = set()
        for action in outcome.actions:
            if not isinstance(action, NotifyAction):
                continue
            occurrence = before.clocks[action.clock_id]
            # Only a running occurrence, and only the one now current for its clock.
            assert occurrence.running
            assert occurrence.number == action.occurrence
            assert action.fire_at <= self.now
            # An extended deadline is a new round of the ladder, named in the key.
            round_ = occurrence.extensions_used
            number = f"{action.occurrence}.{round_}" if round_ else str(action.occurrence)
            assert action.key == f"{CASE_REF}/{action.clock_id}/{number}/{action.level}"
            assert action.key not in self.sent_keys, action.key
            self.sent_keys.add(action.key)
            # One alert per occurrence per wakeup, at the highest rung it covers, and the
            # rungs of an occurrence's round only ever go up.
            which = (action.clock_id, action.occurrence, round_)
            assert which not in notified
            notified.add(which)
            assert action.covers_levels == tuple(sorted(action.covers_levels))
            assert action.level == action.covers_levels[-1]
            assert action.covers_levels[0] > self.last_level.get(which, -1)
            self.last_level[which] = action.level
            self.collapsed.append(len(action.covers_levels) - 1)
        self.state = outcome.state
        self._check_state()
        # Nothing is left due now, and the next wakeup is in the future.
        wakeup = next_wakeup(self.state)
        assert wakeup is None or wakeup > self.now
        again = due_alerts(self.definition, self.state, self.now)
        assert again.actions == ()
        return (self.state.model_dump_json(), outcome.actions)

    def _check_state(self) -> None:
        state = self.state
        self.stages_seen.update(f"{track}:{t.stage}" for track, t in state.tracks.items())
        # It crosses Temporal's data converter and continue-as-new unchanged.
        assert CaseState.model_validate_json(state.model_dump_json()) == state
        for clock_id, occurrence in state.clocks.items():
            assert occurrence.clock_id == clock_id
            assert occurrence.number >= self.numbers.get(clock_id, 1)
            self.numbers[clock_id] = occurrence.number
            deadline = occurrence.deadline
            if deadline.unit is not Unit.HOURS:
                assert deadline.due_at == end_of_day(deadline.due_date)
                if occurrence.status in {ClockStatus.MET, ClockStatus.MET_LATE}:
                    assert occurrence.closed_on is not None
                    on_time = occurrence.closed_on <= deadline.due_date
                    assert (occurrence.status is ClockStatus.MET) == on_time
            if not occurrence.running:
                continue
            spec = self.definition.clocks[clock_id]
            for track, stages in spec.while_in.items():
                assert state.tracks[track].stage in stages, (clock_id, track)
            fire_at = [alert.fire_at for alert in occurrence.alerts]
            assert fire_at == sorted(fire_at), clock_id
            # Every rung is scheduled, except warnings that would fire before the clock
            # started (a one-day clock is "due soon" from its start).
            steps = self.definition.ladders[spec.ladder].steps
            levels = [alert.level for alert in occurrence.alerts]
            assert levels == sorted(levels), clock_id
            started = occurrence.start.effective_at or start_of_day(occurrence.start_date)
            for level, step in enumerate(steps):
                if level not in levels:
                    assert step.offset.amount < 0, (clock_id, level)
            assert all(
                alert.fire_at > started
                for alert in occurrence.alerts
                if steps[alert.level].offset.amount < 0
            ), clock_id


start_instants = st.builds(
    lambda day, minutes: start_of_day(day) + timedelta(minutes=minutes),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)),
    st.integers(0, 23 * 60),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), start=start_instants, steps=st.integers(1, MAX_STEPS))
def test_random_histories_keep_every_invariant_and_replay_identically(
    definition: Definition,
    calendar: WorkingCalendar,
    data: st.DataObject,
    start: datetime,
    steps: int,
) -> None:
    # Most histories follow one track, so that they get deep into it (a protection plan,
    # care proceedings) rather than touching every track a little.
    focus = data.draw(st.sampled_from(["main", "main", "legal", "emergency", "allocation", None]))
    first = Run(definition, calendar, start_case(definition, CASE_REF), start)
    for _ in range(steps):
        step = draw_step(data, definition, first.state, first.now, first.applied, focus)
        first.step(step)

    label(f"clock occurrences opened: {min(sum(first.numbers.values()) // 5 * 5, 20)}+")
    label(f"alerts sent: {min(len(first.sent_keys) // 5 * 5, 20)}+")
    for stage in ("main:cp_plan", "main:cin_plan", "legal:proceedings", "emergency:epo"):
        if stage in first.stages_seen:
            label(f"reached {stage}")
    label(f"collapsed alert: {any(n for n in first.collapsed)}")
    target(float(len(first.sent_keys)), label="alerts sent")
    target(float(sum(first.numbers.values())), label="clock occurrences")

    # The same history again, from scratch and continuing as new before every step: the
    # same results, step for step.
    second = Run(
        definition, calendar, start_case(definition, CASE_REF), start, continue_as_new=True
    )
    for step in first.script:
        second.step(step)
    assert second.results == first.results
    assert second.state == first.state
