"""The state of one case as the core sees it: compact, serialisable, kept across continue-as-new."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from caseclock.core.actions import ClockSnapshot, ClockStatus
from caseclock.core.deadline import Deadline


class ScheduledAlert(BaseModel):
    """A rung of the ladder, resolved to an instant for one occurrence of a clock."""

    model_config = ConfigDict(frozen=True)

    level: int
    name: str
    fire_at: datetime


class EventMark(BaseModel):
    """The latest event of a type: what deadlines anchored on that type measure from."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    effective_date: date
    effective_at: datetime | None = None


class Occurrence(BaseModel):
    """One run of a clock, from the event that started it to the event that met it."""

    model_config = ConfigDict(frozen=True)

    clock_id: str
    number: int
    status: ClockStatus
    start: EventMark
    start_event_type: str
    deadline: Deadline
    alerts: tuple[ScheduledAlert, ...]
    levels_fired: tuple[int, ...] = ()
    extensions_used: int = 0
    closed_by_event_id: str | None = None
    closed_on: date | None = None

    @property
    def start_date(self) -> date:
        """The effective date of the event that started this occurrence."""
        return self.start.effective_date

    @property
    def running(self) -> bool:
        """Whether this occurrence is still open."""
        return self.status is ClockStatus.RUNNING

    def snapshot(self) -> ClockSnapshot:
        """The occurrence as the read model stores it."""
        return ClockSnapshot(
            clock_id=self.clock_id,
            clock_title=self.deadline.rule_title,
            occurrence=self.number,
            status=self.status,
            deadline=self.deadline,
            levels_fired=self.levels_fired,
            closed_by_event_id=self.closed_by_event_id,
            closed_on=self.closed_on,
        )


class TrackState(BaseModel):
    """Where one track of the case stands, and since when."""

    model_config = ConfigDict(frozen=True)

    stage: str
    entered_on: date | None = None
    event_id: str | None = None


class CaseState(BaseModel):
    """Everything the core needs to continue a case. Holds codes and dates, never names."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    definition_id: str
    definition_version: str
    tracks: dict[str, TrackState]
    clocks: dict[str, Occurrence] = {}
    # Event id -> "type#digest" of its facts: a resend is recognised, a reused id refused.
    applied_events: dict[str, str] = {}
    latest: dict[str, EventMark] = {}

    def running(self) -> list[Occurrence]:
        """The open occurrences, in definition order."""
        return [occurrence for occurrence in self.clocks.values() if occurrence.running]
