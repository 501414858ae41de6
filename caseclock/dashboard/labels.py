"""Words for codes: stage, event and clock titles from the definitions, and people's roles.

Definitions are keyed ``id@version``; a code a definition does not know is shown as it is,
so a page never fails for want of a title.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from caseclock.definition.schema import Definition
from caseclock.units import Counting, Unit

JOB_ROLES = {
    "social_worker": "Social worker",
    "team_manager": "Team manager",
    "service_manager": "Service manager",
    "head_of_service": "Head of service",
    "director": "Director",
}
COUNTING = {
    Counting.DAY_AFTER_IS_DAY_1: "The day after the start is day 1 (\u201cwithin N of\u201d)",
    Counting.START_DAY_IS_DAY_1: "The start day is day 1 (\u201cbeginning with the day\u201d)",
}


def humanise(code: str) -> str:
    """``head_of_service`` -> ``Head of service``."""
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def amount(number: int, unit: Unit) -> str:
    """``1 working day``, ``15 working days``."""
    name = unit.value.replace("_", " ")
    return f"{number} {name.removesuffix('s') if number == 1 else name}"


@dataclass(frozen=True)
class Option:
    """A choice in a filter: its value and what it is called."""

    value: str
    text: str


class Labels:
    """Titles of the codes the loaded definitions use.

    Args:
        definitions: Loaded definitions by ``id@version``.

    """

    def __init__(self, definitions: Mapping[str, Definition]) -> None:
        self._definitions = definitions

    def stage(self, definition: str, track: str, stage: str) -> str:
        """A stage's title, e.g. ``Section 47 enquiry``."""
        found = self._definitions.get(definition)
        spec = found.tracks.get(track) if found else None
        title = spec.stages.get(stage) if spec else None
        return title.title if title else humanise(stage)

    def track(self, definition: str, track: str) -> str:
        """A track's title, e.g. ``Child's path``."""
        found = self._definitions.get(definition)
        spec = found.tracks.get(track) if found else None
        return spec.title if spec else humanise(track)

    def is_initial(self, definition: str, track: str, stage: str) -> bool:
        """Whether a stage is where its track starts (nothing to show on a timeline)."""
        found = self._definitions.get(definition)
        spec = found.tracks.get(track) if found else None
        return spec is not None and spec.initial == stage

    def event(self, definition: str, event_type: str) -> str:
        """An event's title, e.g. ``Strategy discussion held``."""
        found = self._definitions.get(definition)
        spec = found.events.get(event_type) if found else None
        return spec.title if spec else humanise(event_type)

    def outcome(self, outcome: str | None) -> str:
        """An event's outcome in words (outcomes are codes such as ``cp_plan``)."""
        return humanise(outcome) if outcome else ""

    def rungs(self, definition: str, clock_id: str) -> list[str]:
        """The names of the rungs of a clock's escalation ladder, in order (level 0 first)."""
        found = self._definitions.get(definition)
        clock = found.clocks.get(clock_id) if found else None
        ladder = found.ladders.get(clock.ladder) if found and clock else None
        return [step.name for step in ladder.steps] if ladder else []

    def stage_options(self, track: str = "main") -> list[Option]:
        """Every stage of a track across the definitions, for a filter."""
        seen: dict[str, str] = {}
        for definition in self._definitions.values():
            spec = definition.tracks.get(track)
            if spec is None:
                continue
            for code, stage in spec.stages.items():
                if code != spec.initial:
                    seen.setdefault(code, stage.title)
        return [Option(code, title) for code, title in seen.items()]

    def clock_options(self) -> list[Option]:
        """Every clock across the definitions, for a filter."""
        seen: dict[str, str] = {}
        for definition in self._definitions.values():
            for code, clock in definition.clocks.items():
                seen.setdefault(code, clock.title)
        return [Option(code, title) for code, title in seen.items()]
