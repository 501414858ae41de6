"""What the core asks the durable shell to do: notify people, and record facts.

Actions are plain data. The workflow turns each into an activity call; every action carries
an idempotency key so that a retried activity or a replayed workflow never repeats a side
effect. Actions carry case references and codes from the definition, never personal data.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from caseclock.core.deadline import Deadline


class AlertState(StrEnum):
    """Where a clock stands relative to its deadline when an alert fires."""

    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


class NotifyAction(BaseModel):
    """Tell the people in these roles about this clock, at this level of the ladder.

    ``key`` is ``{case_ref}/{clock_id}/{occurrence}/{level}``: the idempotency key for
    delivery. When several levels fell due at once (a late-recorded event, or catch-up after
    an outage) they are sent as one alert at the highest level, telling the union of their
    roles; ``covers_levels`` lists them.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["notify"] = "notify"
    key: str
    case_ref: str
    clock_id: str
    clock_title: str
    occurrence: int
    level: int
    level_name: str
    covers_levels: tuple[int, ...]
    roles: tuple[str, ...]
    state: AlertState
    fire_at: datetime
    deadline: Deadline
    what_to_do: str


class ClockStatus(StrEnum):
    """The life of one occurrence of a clock."""

    RUNNING = "running"
    MET = "met"
    MET_LATE = "met_late"
    CANCELLED = "cancelled"


class ClockSnapshot(BaseModel):
    """One occurrence of a clock as the read model stores it (upsert by case, clock, occurrence)."""

    model_config = ConfigDict(frozen=True)

    clock_id: str
    clock_title: str
    occurrence: int
    status: ClockStatus
    deadline: Deadline
    levels_fired: tuple[int, ...] = ()
    closed_by_event_id: str | None = None
    closed_on: date | None = None


class RecordClockAction(BaseModel):
    """Upsert a clock occurrence in the read model."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["record_clock"] = "record_clock"
    case_ref: str
    clock: ClockSnapshot


class RecordStageAction(BaseModel):
    """A track of the case moved to a new stage."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["record_stage"] = "record_stage"
    case_ref: str
    track: str
    stage: str
    entered_on: date
    event_id: str


class RecordEventAction(BaseModel):
    """An event was accepted. Field values are codes from the definition, never free text."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["record_event"] = "record_event"
    case_ref: str
    event_id: str
    event_type: str
    effective_date: date
    effective_at: datetime | None
    recorded_at: datetime
    recorded_by: str
    outcome: str | None = None


Action = Annotated[
    NotifyAction | RecordClockAction | RecordStageAction | RecordEventAction,
    Field(discriminator="kind"),
]
