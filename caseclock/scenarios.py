"""Scenario files: a case's events and the alerts, stages and clocks they must produce.

A developer at an authority writes a scenario to test a definition, or a local change to
one, without a Temporal server (examples in ``scenarios/``). The runner moves simulated time
forward as the case workflow does: before each event is recorded it sends every alert due
by then, taking ``next_wakeup`` and calling ``due_alerts`` at that instant, or at once if
the instant has passed (so rungs that fell due together collapse into one alert); then it
applies the event. At the end it runs time to the end of ``expect.until``.

An event happens ``on`` a date or ``at`` an instant and is recorded at 09:00 Europe/London
on ``recorded_on`` (default ``on``), at ``recorded_at``, or at ``at``. ``expect_rejected``
is a substring of the reason it must be refused with. ``expect.alerts`` lists exactly the
alerts sent on or before ``until``; ``clocks`` and ``due`` describe the latest occurrence
of each clock. ``known_issue`` lists alerts a known bug adds: the scenario passes with
them, and fails once they stop happening, so the note is removed with the fix.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from difflib import SequenceMatcher
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from caseclock.calendar import LONDON, Closure, WorkingCalendar, end_of_day, local_date
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.actions import NotifyAction
from caseclock.core.engine import apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent, EventId, EventRejectedError, FieldValue
from caseclock.core.state import CaseState
from caseclock.definition.loader import load_definitions
from caseclock.definition.references import Problem
from caseclock.definition.schema import Definition
from caseclock.yaml_files import YamlFileError, read_yaml

CALENDAR_YEARS = (2000, 2045)
RECORDING_TIME = time(9, 0)
ClockExpectation = Literal["running", "met", "met_late", "cancelled", "not_started"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalClosure(_Strict):
    """A day the authority is closed, on top of the bank holidays."""

    day: date
    name: str = Field(min_length=1)


class CalendarSpec(_Strict):
    """The working calendar: England and Wales bank holidays plus these closure days."""

    local_closures: tuple[LocalClosure, ...] = ()


class ScenarioEvent(_Strict):
    """One event, when it happened (``on`` or ``at``) and when it was recorded."""

    type: str
    on: date | None = None
    at: AwareDatetime | None = None
    outcome: str | None = None
    data: dict[str, FieldValue] = {}
    recorded_on: date | None = None
    recorded_at: AwareDatetime | None = None
    id: EventId | None = None
    expect_rejected: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_time(self) -> Self:
        if (self.on is None) == (self.at is None):
            raise ValueError("give exactly one of 'on' (a date) or 'at' (a time with zone)")
        if self.recorded_on is not None and self.recorded_at is not None:
            raise ValueError("give at most one of 'recorded_on' or 'recorded_at'")
        return self

    @property
    def effective_date(self) -> date:
        """The day the event happened, in Europe/London."""
        return self.on if self.on is not None else local_date(self._at())

    def recorded(self) -> datetime:
        """The instant the event is recorded (in UTC)."""
        if self.recorded_at is not None:
            return self.recorded_at.astimezone(UTC)
        if self.recorded_on is None and self.at is not None:
            return self.at.astimezone(UTC)
        day = self.recorded_on or self.effective_date
        return datetime.combine(day, RECORDING_TIME, tzinfo=LONDON).astimezone(UTC)

    def _at(self) -> datetime:
        assert self.at is not None  # noqa: S101 (_one_time guarantees on or at)
        return self.at

    def describe(self, number: int) -> str:
        """``event 3 icpc_held (on 2021-01-20)``, to name the event in a difference."""
        when = self.on.isoformat() if self.on is not None else self._at().isoformat()
        return f"event {number} {self.type} ({'on' if self.on else 'at'} {when})"


class AlertExpectation(_Strict):
    """An alert: the local date it is sent, the clock and rung; optionally more detail."""

    on: date
    clock: str
    level: str
    at: AwareDatetime | None = None
    occurrence: int | None = None
    covers: tuple[str, ...] | None = None
    notify: tuple[str, ...] | None = None


class Expectations(_Strict):
    """What must be true once time has run to the end of ``until``."""

    until: date
    alerts: tuple[AlertExpectation, ...]
    stages: dict[str, str] = {}
    clocks: dict[str, ClockExpectation] = {}
    due: dict[str, date] = {}


class KnownIssue(_Strict):
    """Alerts a known bug adds; the scenario passes with them and fails once they stop."""

    note: str = Field(min_length=1)
    alerts: tuple[AlertExpectation, ...] = Field(min_length=1)


class Scenario(_Strict):
    """A scenario file."""

    scenario: str = Field(min_length=1)
    definition: str
    definition_version: str | None = None
    case: str = "SCENARIO"
    calendar: CalendarSpec = CalendarSpec()
    events: tuple[ScenarioEvent, ...]
    expect: Expectations
    known_issue: KnownIssue | None = None


@dataclass(frozen=True)
class FiredAlert:
    """An alert the runner sent: when, for which clock occurrence, at which rung, to whom."""

    sent_at: datetime
    clock: str
    occurrence: int
    level: str
    covers: tuple[str, ...]
    roles: tuple[str, ...]

    @property
    def on(self) -> date:
        """The Europe/London date the alert was sent."""
        return local_date(self.sent_at)

    def key(self) -> tuple[date, str, str]:
        """What every expectation compares: date, clock, rung."""
        return (self.on, self.clock, self.level)

    def __str__(self) -> str:
        return (
            f"{self.on.isoformat()} {self.clock} {self.level} (occurrence {self.occurrence}, "
            f"covers {', '.join(self.covers)}, to {', '.join(self.roles)}, "
            f"at {self.sent_at.isoformat()})"
        )


@dataclass(frozen=True)
class ScenarioResult:
    """The outcome of one scenario: what was sent and how it differed from expectations.

    ``problems`` means the file could not be run at all (with field paths);
    ``differences`` are expectations the run did not meet; ``known`` are alerts of the
    scenario's ``known_issue`` that happened, as it says they would.
    """

    path: Path
    name: str
    definition: str = ""
    alerts: tuple[FiredAlert, ...] = ()
    differences: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    known: tuple[str, ...] = ()
    known_note: str = ""

    @property
    def passed(self) -> bool:
        """Whether the scenario ran and met every expectation (known issues allowed)."""
        return not self.problems and not self.differences

    @property
    def status(self) -> str:
        """PASS, KNOWN (passed, with a known issue), FAIL or ERROR (could not run)."""
        if self.problems:
            return "ERROR"
        if self.differences:
            return "FAIL"
        return "KNOWN" if self.known else "PASS"

    def report(self) -> str:
        """The status line and, indented under it, every problem, difference or known issue."""
        lines = [f"{self.status:<5} {self.path}: {self.name}"]
        lines += [f"      {self.path}: {problem}" for problem in self.problems]
        lines += [f"      {difference}" for difference in self.differences]
        if self.known and not self.differences:
            lines.append(f"      known issue: {self.known_note}")
            lines += [f"        {alert}" for alert in self.known]
        return "\n".join(lines)


class ScenarioFileError(Exception):
    """A scenario file is malformed or does not fit its definition; lists every problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file's shape, or raise ScenarioFileError."""
    source = str(path)
    try:
        raw = read_yaml(path)
    except YamlFileError as error:
        raise ScenarioFileError(source, [Problem("(file)", str(error))]) from error
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioFileError(source, [_problem(item) for item in error.errors()]) from error


def _problem(error: Mapping[str, Any]) -> Problem:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or not part of the scenario format)"
    return Problem(path or "(file)", message)


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version))


def find_definition(
    definitions: Mapping[str, Definition], definition_id: str, version: str | None = None
) -> Definition | None:
    """That version of a definition, or else its latest version (versions sort naturally)."""
    matching = [
        d for d in definitions.values() if d.id == definition_id and version in (None, d.version)
    ]
    return max(matching, key=lambda d: _version_key(d.version), default=None)


def check_scenario(scenario: Scenario, definition: Definition) -> list[Problem]:
    """Every name in the scenario the definition does not know, and events out of order."""
    problems = _check_events(scenario, definition)
    expect = scenario.expect
    for track, stage in expect.stages.items():
        if track not in definition.tracks:
            problems.append(Problem(f"expect.stages.{track}", f"unknown track {track!r}"))
        elif stage not in definition.tracks[track].stages:
            problems.append(Problem(f"expect.stages.{track}", f"unknown stage {stage!r}"))
    for key, clocks in (("clocks", expect.clocks), ("due", expect.due)):
        problems += [
            Problem(f"expect.{key}.{clock}", f"unknown clock {clock!r}")
            for clock in clocks
            if clock not in definition.clocks
        ]
    problems += _check_alerts("expect.alerts", expect.alerts, definition)
    if scenario.known_issue is not None:
        problems += _check_alerts("known_issue.alerts", scenario.known_issue.alerts, definition)
    days = [closure.day for closure in scenario.calendar.local_closures]
    for i, day in enumerate(days):
        if not CALENDAR_YEARS[0] <= day.year <= CALENDAR_YEARS[1]:
            problems.append(
                Problem(f"calendar.local_closures[{i}].day", f"outside {CALENDAR_YEARS}")
            )
        elif day in days[:i]:
            problems.append(Problem(f"calendar.local_closures[{i}].day", "listed twice"))
    return problems


def _check_events(scenario: Scenario, definition: Definition) -> list[Problem]:
    problems = [] if scenario.events else [Problem("events", "list at least one event")]
    previous: datetime | None = None
    for i, event in enumerate(scenario.events):
        if event.type not in definition.events:
            problems.append(Problem(f"events[{i}].type", f"unknown event {event.type!r}"))
        recorded = event.recorded()
        if previous is not None and recorded < previous:
            problems.append(
                Problem(f"events[{i}]", "recorded before the event above it; list events in order")
            )
        previous = recorded
    if previous is not None and end_of_day(scenario.expect.until) < previous:
        problems.append(Problem("expect.until", "is before the last event is recorded"))
    return problems


def _check_alerts(
    path: str, alerts: tuple[AlertExpectation, ...], definition: Definition
) -> list[Problem]:
    problems = []
    for i, alert in enumerate(alerts):
        if i and alert.on < alerts[i - 1].on:
            problems.append(Problem(f"{path}[{i}].on", "list alerts in the order they are sent"))
        spec = definition.clocks.get(alert.clock)
        if spec is None:
            problems.append(Problem(f"{path}[{i}].clock", f"unknown clock {alert.clock!r}"))
            continue
        rungs = [step.name for step in definition.ladders[spec.ladder].steps]
        for name in (alert.level, *(alert.covers or ())):
            if name not in rungs:
                problems.append(
                    Problem(f"{path}[{i}]", f"{spec.ladder} ladder has no rung {name!r}")
                )
        for role in alert.notify or ():
            if role not in definition.roles:
                problems.append(Problem(f"{path}[{i}].notify", f"unknown role {role!r}"))
    return problems


class _Simulation:
    """One case driven through the pure core, with time moving forward as in the workflow."""

    def __init__(self, definition: Definition, calendar: WorkingCalendar, case: str) -> None:
        self.definition = definition
        self.calendar = calendar
        self.state: CaseState = start_case(definition, case)
        self.now = datetime.min.replace(tzinfo=UTC)
        self.alerts: list[FiredAlert] = []

    def run_until(self, instant: datetime, *, inclusive: bool = True) -> None:
        """Send every alert due up to ``instant``; a timer already past fires at once."""
        while (wakeup := next_wakeup(self.state)) is not None and (
            wakeup < instant or (inclusive and wakeup == instant)
        ):
            self.now = max(self.now, wakeup)
            outcome = due_alerts(self.definition, self.state, self.now)
            self.state = outcome.state
            self.alerts += [
                self._fired(action)
                for action in outcome.actions
                if isinstance(action, NotifyAction)
            ]
        self.now = max(self.now, instant)

    def _fired(self, action: NotifyAction) -> FiredAlert:
        ladder = self.definition.ladders[self.definition.clocks[action.clock_id].ladder]
        return FiredAlert(
            sent_at=self.now,
            clock=action.clock_id,
            occurrence=action.occurrence,
            level=action.level_name,
            covers=tuple(ladder.steps[level].name for level in action.covers_levels),
            roles=action.roles,
        )

    def record(self, number: int, event: ScenarioEvent) -> str | None:
        """Apply an event at ``now``; a difference if it was (not) rejected unexpectedly."""
        case_event = CaseEvent(
            event_id=event.id or f"e{number}",
            type=event.type,
            effective_date=event.effective_date,
            effective_at=event.at,
            recorded_at=self.now,
            recorded_by="scenario",
            outcome=event.outcome,
            data=event.data,
        )
        try:
            outcome = apply_event(self.definition, self.state, case_event, self.calendar, self.now)
        except EventRejectedError as error:
            if event.expect_rejected is None:
                return f"{event.describe(number)}: rejected: {error}"
            if event.expect_rejected not in str(error):
                return (
                    f"{event.describe(number)}: rejected, but not with "
                    f"{event.expect_rejected!r}: {error}"
                )
            return None
        self.state = outcome.state
        if event.expect_rejected is not None:
            return (
                f"{event.describe(number)}: accepted, but expected a rejection "
                f"containing {event.expect_rejected!r}"
            )
        return None


def run_scenario(path: Path, definitions: Mapping[str, Definition]) -> ScenarioResult:
    """Run one scenario file against validated definitions (keyed ``id@version``)."""
    try:
        scenario = load_scenario(path)
    except ScenarioFileError as error:
        return ScenarioResult(path=path, name=path.stem, problems=tuple(error.problems))
    definition = find_definition(definitions, scenario.definition, scenario.definition_version)
    if definition is None:
        wanted = f"{scenario.definition} version {scenario.definition_version or '(any)'}"
        names = ", ".join(sorted(definitions)) or "none"
        problem = Problem("definition", f"no definition {wanted} (known: {names})")
        return ScenarioResult(path=path, name=scenario.scenario, problems=(problem,))
    result = ScenarioResult(
        path=path, name=scenario.scenario, definition=f"{definition.id}@{definition.version}"
    )
    problems = check_scenario(scenario, definition)
    if problems:
        return replace(result, problems=tuple(problems))
    closures = [Closure(day=c.day, name=c.name) for c in scenario.calendar.local_closures]
    calendar = build_england_and_wales_calendar(*CALENDAR_YEARS, local_closures=closures)
    simulation = _Simulation(definition, calendar, scenario.case)
    differences: list[str] = []
    try:
        for number, event in enumerate(scenario.events, start=1):
            simulation.run_until(event.recorded())
            difference = simulation.record(number, event)
            differences += [difference] if difference else []
        # Alerts sent on or before ``until``: not those at the instant the next day begins.
        simulation.run_until(end_of_day(scenario.expect.until), inclusive=False)
    except Exception as error:  # an engine crash is a result to report
        differences.append(f"the engine raised {type(error).__name__}: {error}")
    alerts = tuple(simulation.alerts)
    alert_differences, known = _compare_alerts(scenario, definition, alerts)
    differences += alert_differences + _compare_state(scenario.expect, simulation.state)
    return replace(
        result,
        alerts=alerts,
        differences=tuple(differences),
        known=tuple(str(alert) for alert in known),
        known_note=scenario.known_issue.note if scenario.known_issue else "",
    )


def _detail_differences(expected: AlertExpectation, actual: FiredAlert) -> list[str]:
    checks = [
        ("at", expected.at and expected.at.astimezone(UTC), actual.sent_at),
        ("occurrence", expected.occurrence, actual.occurrence),
        ("covers", expected.covers, actual.covers),
        ("notify", expected.notify, actual.roles),
    ]
    return [
        f"alert {actual.on.isoformat()} {actual.clock} {actual.level}: {name} expected "
        f"{_show(want)}, got {_show(got)}"
        for name, want, got in checks
        if want is not None and want != got
    ]


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _alert_order(definition: Definition) -> Callable[[date, str, str], tuple[date, int, int]]:
    """Sort key of an alert: date sent, then the definition's order of clocks and rungs.

    Alerts sent on the same day may be listed in any order in a scenario file.
    """
    clocks = list(definition.clocks)

    def key(on: date, clock: str, level: str) -> tuple[date, int, int]:
        steps = [step.name for step in definition.ladders[definition.clocks[clock].ladder].steps]
        return (on, clocks.index(clock), steps.index(level))

    return key


def _compare_alerts(
    scenario: Scenario, definition: Definition, sent: tuple[FiredAlert, ...]
) -> tuple[list[str], list[FiredAlert]]:
    """Differences between expected and sent alerts, and the known-issue alerts that happened."""
    order = _alert_order(definition)
    expected = sorted(scenario.expect.alerts, key=lambda e: order(e.on, e.clock, e.level))
    alerts = sorted(sent, key=lambda alert: order(*alert.key()))
    wanted = [(e.on, e.clock, e.level) for e in expected]
    matcher = SequenceMatcher(None, wanted, [alert.key() for alert in alerts], autojunk=False)
    differences: list[str] = []
    unexpected: list[FiredAlert] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for want, got in zip(expected[i1:i2], alerts[j1:j2], strict=True):
                differences += _detail_differences(want, got)
            continue
        differences += [
            f"missing alert: {e.on.isoformat()} {e.clock} {e.level}" for e in expected[i1:i2]
        ]
        unexpected += alerts[j1:j2]
    pending = list(scenario.known_issue.alerts if scenario.known_issue else ())
    known: list[FiredAlert] = []
    for alert in unexpected:
        match = next((k for k in pending if (k.on, k.clock, k.level) == alert.key()), None)
        if match is None or _detail_differences(match, alert):
            differences.append(f"unexpected alert: {alert}")
            continue
        pending.remove(match)
        known.append(alert)
    differences += [
        f"known issue no longer happens (remove it from known_issue if fixed): "
        f"{k.on.isoformat()} {k.clock} {k.level}"
        for k in pending
    ]
    return differences, known


def _compare_state(expect: Expectations, state: CaseState) -> list[str]:
    differences = [
        f"stage {track}: expected {stage}, got {state.tracks[track].stage}"
        for track, stage in expect.stages.items()
        if state.tracks[track].stage != stage
    ]
    for clock, status in expect.clocks.items():
        occurrence = state.clocks.get(clock)
        actual = "not_started" if occurrence is None else occurrence.status.value
        if actual != status:
            differences.append(f"clock {clock}: expected {status}, got {actual}")
    for clock, due in expect.due.items():
        occurrence = state.clocks.get(clock)
        if occurrence is None:
            differences.append(f"due {clock}: expected {due.isoformat()}, never started")
        elif occurrence.deadline.due_date != due:
            differences.append(
                f"due {clock}: expected {due.isoformat()}, "
                f"got {occurrence.deadline.due_date.isoformat()}"
            )
    return differences


def run_scenarios(folder: Path, definitions_folder: Path) -> list[ScenarioResult]:
    """Run every ``*.yaml`` under ``folder`` (recursively, in path order).

    Raises:
        DefinitionError: If the definitions folder does not validate.

    """
    definitions = load_definitions(definitions_folder)
    return [run_scenario(path, definitions) for path in sorted(folder.rglob("*.yaml"))]
