"""A deadline that explains itself: rule, version, start event, unit, convention, calendar."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from caseclock.units import Counting, Unit

# The deadline module stays free of the calendar module; the zone is the same.
_LONDON = ZoneInfo("Europe/London")


class Extension(BaseModel):
    """A lawful extension of a period (for example s32(5) for care proceedings)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    amount: int
    unit: Unit


class Deadline(BaseModel):
    """When a clock's occurrence falls due, and why.

    Every field a manager needs to answer "why is this red?" is here, so the explanation
    can be rebuilt from stored data without the definition file.
    """

    model_config = ConfigDict(frozen=True)

    rule_id: str
    rule_title: str
    definition_id: str
    definition_version: str
    start_event_type: str
    start_event_id: str
    start_date: date
    # For periods in hours: the instant they run from (a date alone is not enough).
    start_at: datetime | None = None
    amount: int
    unit: Unit
    counting: Counting
    calendar_id: str
    due_date: date
    due_at: datetime
    window_opens_on: date | None = None
    extensions: tuple[Extension, ...] = ()
    basis: str = ""
    source: str = ""

    def explain(self) -> str:
        """Say in one paragraph how the due date was reached."""
        rule = (
            f"{self.rule_title} ({self.definition_id} v{self.definition_version}, rule "
            f"{self.rule_id}): {_amount(self.amount, self.unit)} from {self.start_event_type}"
        )
        if self.unit is Unit.HOURS:
            started = self.start_at.astimezone(_LONDON) if self.start_at else None
            since = f"{started:%Y-%m-%d %H:%M} London time" if started else self.start_date
            text = (
                f"{rule} at {since} (event {self.start_event_id}); counted in elapsed hours. "
                f"Due at {self.due_at.astimezone(_LONDON):%Y-%m-%d %H:%M} London time "
                f"({self.due_at.isoformat()})."
            )
        else:
            counting = {
                Counting.DAY_AFTER_IS_DAY_1: "the day after the start is day 1",
                Counting.START_DAY_IS_DAY_1: "the start day is day 1",
            }[self.counting]
            text = (
                f"{rule} on {self.start_date.isoformat()} (event {self.start_event_id}); "
                f"{counting}; calendar {self.calendar_id}. Due by the end of "
                f"{self.due_date.isoformat()} ({self.due_at.isoformat()})."
            )
        if self.basis:
            text += f" {self.basis}."
        if self.window_opens_on is not None:
            text += f" Not before {self.window_opens_on.isoformat()}."
        for extension in self.extensions:
            text += (
                f" Extended by {_amount(extension.amount, extension.unit)}"
                f" (event {extension.event_id})."
            )
        if self.source:
            text += f" Source: {self.source}."
        return text


def _amount(amount: int, unit: Unit) -> str:
    """``1 working day``, ``15 working days``."""
    name = unit.value.replace("_", " ")
    return f"{amount} {name.removesuffix('s') if amount == 1 else name}"
