"""Cross-reference checks over a definition's raw data.

They run on the parsed YAML rather than on the pydantic model, so that a file with both a
malformed field and a dangling reference gets both reported in one pass. Every check is
defensive about shapes: shape errors are pydantic's to report.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Rough lengths in days, only to check that a ladder's rungs are in firing order.
_APPROX_DAYS = {"hours": 1 / 24, "days": 1, "working_days": 1.4, "weeks": 7, "months": 30.4}
_MATCH_LISTS = ("starts_on", "met_by", "cancelled_by", "restarts_on")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file: where (a dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class _Index:
    """The ids a definition declares, read tolerantly from raw data."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.roles = set(_mapping(raw.get("roles")))
        self.tracks = {
            track: set(_mapping(_mapping(spec).get("stages")))
            for track, spec in _mapping(raw.get("tracks")).items()
        }
        self.events = _mapping(raw.get("events"))
        self.clocks = set(_mapping(raw.get("clocks")))
        self.ladders = set(_mapping(raw.get("ladders")))

    def outcomes(self, event: str) -> set[str]:
        return set(_mapping(_mapping(self.events.get(event)).get("outcomes")))

    def field(self, event: str, name: str) -> Mapping[str, Any] | None:
        fields = _mapping(_mapping(self.events.get(event)).get("fields"))
        return _mapping(fields[name]) if name in fields else None


def check_references(raw: Mapping[str, Any]) -> list[Problem]:
    """Every dangling or inconsistent reference in a definition, in file order."""
    index = _Index(raw)
    problems: list[Problem] = []
    problems += _check_tracks(raw, index)
    problems += _check_stages("closes_when", raw.get("closes_when"), index)
    for event_id, spec in index.events.items():
        problems += _check_event(f"events.{event_id}", _mapping(spec), index)
    for clock_id, spec in _mapping(raw.get("clocks")).items():
        problems += _check_clock(f"clocks.{clock_id}", _mapping(spec), index)
    for ladder_id, spec in _mapping(raw.get("ladders")).items():
        problems += _check_ladder(f"ladders.{ladder_id}", _mapping(spec), index)
    return problems


def _check_tracks(raw: Mapping[str, Any], index: _Index) -> Iterator[Problem]:
    for track, spec in _mapping(raw.get("tracks")).items():
        initial = _mapping(spec).get("initial")
        if isinstance(initial, str) and initial not in index.tracks[track]:
            yield Problem(f"tracks.{track}.initial", f"unknown stage {initial!r}")


def _check_stages(path: str, value: Any, index: _Index) -> Iterator[Problem]:
    """Check a ``{track: stage or [stages]}`` mapping."""
    for track, stages in _mapping(value).items():
        if track not in index.tracks:
            yield Problem(f"{path}.{track}", f"unknown track {track!r}")
            continue
        for stage in _items(stages) if not isinstance(stages, str) else [stages]:
            if isinstance(stage, str) and stage not in index.tracks[track]:
                yield Problem(f"{path}.{track}", f"unknown stage {stage!r} in track {track!r}")


def _check_event(path: str, spec: Mapping[str, Any], index: _Index) -> Iterator[Problem]:
    yield from _check_stages(f"{path}.when", spec.get("when"), index)
    yield from _check_stages(f"{path}.then", spec.get("then"), index)
    for outcome, moves in _mapping(spec.get("outcomes")).items():
        yield from _check_stages(f"{path}.outcomes.{outcome}", moves, index)
    if "outcome" in _mapping(spec.get("fields")):
        yield Problem(f"{path}.fields.outcome", "declare outcomes under 'outcomes', not 'fields'")
    for i, clock in enumerate(_items(spec.get("requires_running"))):
        if clock not in index.clocks:
            yield Problem(f"{path}.requires_running[{i}]", f"unknown clock {clock!r}")


def _check_match(path: str, value: Any, index: _Index) -> Iterator[Problem]:
    if not isinstance(value, str):
        return
    event, _, outcome = value.partition(":")
    if event not in index.events:
        yield Problem(path, f"unknown event {event!r}")
    elif outcome and outcome not in index.outcomes(event):
        known = ", ".join(sorted(index.outcomes(event))) or "none"
        yield Problem(path, f"event {event!r} has no outcome {outcome!r} (outcomes: {known})")


def _check_clock(path: str, spec: Mapping[str, Any], index: _Index) -> Iterator[Problem]:
    for key in _MATCH_LISTS:
        for i, match in enumerate(_items(spec.get(key))):
            yield from _check_match(f"{path}.{key}[{i}]", match, index)
    yield from _check_stages(f"{path}.while_in", spec.get("while_in"), index)
    if spec.get("recurring") and not _items(spec.get("met_by")):
        yield Problem(f"{path}.recurring", "a recurring clock needs met_by events to recur on")
    deadline = _mapping(spec.get("deadline"))
    anchors = [("deadline.from", deadline.get("from"))] + [
        (f"deadline.sooner_of[{i}].from", _mapping(term).get("from"))
        for i, term in enumerate(_items(deadline.get("sooner_of")))
    ]
    for where, anchor in anchors:
        if isinstance(anchor, str) and anchor not in index.events:
            yield Problem(f"{path}.{where}", f"unknown event {anchor!r}")
    terms = _items(deadline.get("sooner_of"))
    if terms and all(_mapping(term).get("from") for term in terms):
        yield Problem(
            f"{path}.deadline.sooner_of", "at least one term must run from the clock's start"
        )
    yield from _check_extension(f"{path}.extended_by", spec.get("extended_by"), index)
    ladder = spec.get("ladder")
    if isinstance(ladder, str) and ladder not in index.ladders:
        yield Problem(f"{path}.ladder", f"unknown ladder {ladder!r}")


def _check_extension(path: str, value: Any, index: _Index) -> Iterator[Problem]:
    extension = _mapping(value)
    event, field = extension.get("event"), extension.get("field")
    if not isinstance(event, str):
        return
    if event not in index.events:
        yield Problem(f"{path}.event", f"unknown event {event!r}")
        return
    if isinstance(field, str):
        spec = index.field(event, field)
        if spec is None:
            yield Problem(f"{path}.field", f"event {event!r} has no field {field!r}")
        elif spec.get("type") != "integer" or not spec.get("required"):
            yield Problem(f"{path}.field", f"field {field!r} must be a required integer")


def _check_ladder(path: str, spec: Mapping[str, Any], index: _Index) -> Iterator[Problem]:
    names: set[str] = set()
    previous = float("-inf")
    for i, step in enumerate(_items(spec.get("steps"))):
        step_map = _mapping(step)
        name = step_map.get("name")
        if isinstance(name, str):
            if name in names:
                yield Problem(f"{path}.steps[{i}].name", f"step name {name!r} is used twice")
            names.add(name)
        for j, role in enumerate(_items(step_map.get("notify"))):
            if role not in index.roles:
                yield Problem(f"{path}.steps[{i}].notify[{j}]", f"unknown role {role!r}")
        offset = _mapping(step_map.get("offset"))
        amount, unit = offset.get("amount"), offset.get("unit")
        if isinstance(amount, int) and unit in _APPROX_DAYS:
            days = amount * _APPROX_DAYS[unit]
            if days <= previous:
                yield Problem(
                    f"{path}.steps[{i}].offset", "steps must be in firing order, each later"
                )
            previous = days
