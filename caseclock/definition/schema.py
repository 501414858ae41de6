"""The definition file format (schema version 1), as pydantic models.

A definition names tracks of stages, the events that move a case between stages, the clocks
those events start and stop, and the escalation ladders that say who is told when. Steps
refer to each other by id; nothing is imported or evaluated from a definition file.
Cross-references (an event naming a stage that does not exist, say) are checked in
``caseclock.definition.references`` so that every problem in a file is reported at once.
"""

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from caseclock.units import Counting, Unit

SCHEMA_VERSION = 1
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class StrictModel(BaseModel):
    """Refuses unknown keys, so a misspelt key is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Confidence(StrEnum):
    """How sure we are of a figure (see TIMESCALES.md): primary text, secondary, local policy."""

    PRIMARY = "V"
    SECONDARY = "S"
    LOCAL = "L"


class EventMatch(StrictModel):
    """An event type, optionally narrowed to one outcome. Written ``event`` or ``event:outcome``."""

    event: Identifier
    outcome: Identifier | None = None

    def matches(self, event_type: str, outcome: str | None) -> bool:
        """Whether an event of this type and outcome is the one meant."""
        return self.event == event_type and (self.outcome is None or self.outcome == outcome)

    def __str__(self) -> str:
        return self.event if self.outcome is None else f"{self.event}:{self.outcome}"


def _parse_match(value: object) -> object:
    if isinstance(value, str):
        event, _, outcome = value.partition(":")
        return {"event": event, "outcome": outcome or None}
    return value


Match = Annotated[EventMatch, BeforeValidator(_parse_match)]


class FieldType(StrEnum):
    """Types of the fields an event carries."""

    CHOICE = "choice"
    INTEGER = "integer"
    CODE = "code"
    # Free text may describe a child: it travels only in encrypted payloads and is never
    # logged, indexed or written to the read model.
    TEXT = "text"


class FieldSpec(StrictModel):
    """A field of an event, such as the weeks of an extension or the reason for it."""

    type: FieldType
    title: str
    required: bool = False
    choices: tuple[Identifier, ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    @model_validator(mode="after")
    def _choices_only_for_choice(self) -> Self:
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError("a choice field needs a non-empty list of choices")
        if self.type is not FieldType.CHOICE and self.choices:
            raise ValueError("only a choice field may list choices")
        if self.type is not FieldType.INTEGER and (self.minimum, self.maximum) != (None, None):
            raise ValueError("only an integer field may have a minimum or maximum")
        return self


class EventSpec(StrictModel):
    """An event the case system (or a person) records, and how it moves the case.

    ``when`` lists, per track, the stages the event is allowed in; ``then`` moves tracks;
    ``outcomes`` moves tracks according to the event's ``outcome`` (which is then required).
    """

    title: str
    when: dict[Identifier, tuple[Identifier, ...]] = {}
    then: dict[Identifier, Identifier] = {}
    outcomes: dict[Identifier, dict[Identifier, Identifier]] = {}
    fields: dict[Identifier, FieldSpec] = {}
    requires_running: tuple[Identifier, ...] = ()


class Period(StrictModel):
    """A statutory period: an amount of a unit, counted by an explicit convention."""

    amount: int = Field(ge=1)
    unit: Unit
    counting: Counting = Counting.DAY_AFTER_IS_DAY_1


class DeadlineTerm(Period):
    """A period measured from an anchor event (by default the event that started the clock)."""

    from_event: Identifier | None = Field(default=None, alias="from")


# The core asks for a clock's terms on every event, and validating a new DeadlineTerm each
# time was a sixth of its run time. The cache is keyed on the term's own values (not on
# the spec object), so it can never hand back a term for different content, and the
# frozen term it returns is shared safely. Definitions hold few distinct terms.
@lru_cache(maxsize=1024)
def _single_term(
    amount: int, unit: Unit, counting: Counting, from_event: str | None
) -> tuple[DeadlineTerm, ...]:
    """The one-term form of a deadline, validated like any term."""
    term = {"amount": amount, "unit": unit, "counting": counting, "from": from_event}
    return (DeadlineTerm.model_validate(term),)


class DeadlineSpec(StrictModel):
    """When a clock falls due: one term, or the sooner of several; optionally a window."""

    amount: int | None = Field(default=None, ge=1)
    unit: Unit | None = None
    counting: Counting = Counting.DAY_AFTER_IS_DAY_1
    from_event: Identifier | None = Field(default=None, alias="from")
    sooner_of: tuple[DeadlineTerm, ...] = ()
    window_opens: Period | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        single = self.amount is not None or self.unit is not None
        if single and self.sooner_of:
            raise ValueError("give either amount and unit, or sooner_of, not both")
        if not single and len(self.sooner_of) < 2:
            raise ValueError("give amount and unit, or sooner_of with at least two terms")
        if single and (self.amount is None or self.unit is None):
            raise ValueError("a deadline needs both amount and unit")
        return self

    def terms(self) -> tuple[DeadlineTerm, ...]:
        """The deadline as a list of terms; the due date is the soonest that applies."""
        if self.sooner_of:
            return self.sooner_of
        if self.amount is None or self.unit is None:  # excluded by _one_form
            raise ValueError("a deadline needs both amount and unit")
        return _single_term(self.amount, self.unit, self.counting, self.from_event)

    def counts_hours(self) -> bool:
        """Whether any term is counted in hours, so that its events need a time of day.

        Read from the fields rather than from :meth:`terms`: the core asks this of every
        clock on every event, and most deadlines are a single term in days.
        """
        return self.unit is Unit.HOURS or any(t.unit is Unit.HOURS for t in self.sooner_of)


class ExtensionSpec(StrictModel):
    """An event that lawfully extends a running clock, by an amount in one of its fields."""

    event: Identifier
    field: Identifier
    unit: Unit
    max_amount: int = Field(ge=1)
    max_times: int | None = Field(default=None, ge=1)
    source: str


class ClockSpec(StrictModel):
    """A statutory or local clock: what starts it, what meets it, when it is due, who is told."""

    title: str
    what_to_do: str
    starts_on: tuple[Match, ...] = Field(min_length=1)
    met_by: tuple[Match, ...] = ()
    cancelled_by: tuple[Match, ...] = ()
    restarts_on: tuple[Match, ...] = ()
    recurring: bool = False
    # The clock runs only while these tracks are in these stages: it cannot start otherwise,
    # and a running occurrence is cancelled when the case leaves them.
    while_in: dict[Identifier, tuple[Identifier, ...]] = {}
    deadline: DeadlineSpec
    extended_by: ExtensionSpec | None = None
    ladder: Identifier
    source: str = Field(min_length=1)
    confidence: tuple[Confidence, ...] = Field(min_length=1)
    note: str = ""


class Offset(StrictModel):
    """A signed offset from a deadline: negative is before it, zero is the deadline itself."""

    amount: int
    unit: Unit


class LadderStep(StrictModel):
    """One rung of an escalation ladder."""

    name: Identifier
    offset: Offset
    notify: tuple[Identifier, ...] = Field(min_length=1)


class LadderSpec(StrictModel):
    """Who is told, and when, relative to a clock's deadline; rungs in firing order."""

    title: str
    steps: tuple[LadderStep, ...] = Field(min_length=1)


class StageSpec(StrictModel):
    """A stage a track can be in."""

    title: str


class TrackSpec(StrictModel):
    """A set of mutually exclusive stages; a case is in one stage of every track at once."""

    title: str
    initial: Identifier
    stages: dict[Identifier, StageSpec] = Field(min_length=1)


class Definition(StrictModel):
    """A whole process definition, as validated from one file."""

    schema_version: Literal[1]
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
    version: Annotated[str, Field(pattern=r"^[0-9][0-9A-Za-z.+-]*$", max_length=32)]
    title: str
    description: str = ""
    roles: dict[Identifier, str] = Field(min_length=1)
    tracks: dict[Identifier, TrackSpec] = Field(min_length=1)
    events: dict[Identifier, EventSpec] = Field(min_length=1)
    clocks: dict[Identifier, ClockSpec] = {}
    ladders: dict[Identifier, LadderSpec] = {}
    # A case is finished, and its workflow completes, once its tracks are in these stages
    # and no clock is running. Empty: cases never finish on their own.
    closes_when: dict[Identifier, tuple[Identifier, ...]] = {}
