"""What the read model hands out: pydantic views, never ORM objects, and the mapping to them.

Views are frozen and carry case references and codes only. They cross process boundaries
(activities, the HTTP API), so fields are added with defaults, never renamed.
"""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from caseclock.core.actions import AlertState, ClockStatus
from caseclock.core.deadline import Deadline
from caseclock.db.models import Case, Clock, Escalation


class CaseView(BaseModel):
    """A case as last recorded: its team, allocation and current stage on each track."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    definition_id: str
    definition_version: str
    team: str
    allocated_worker: str | None
    opened_on: date
    closed_on: date | None
    current_stages: dict[str, str]
    updated_at: datetime


class ClockView(BaseModel):
    """One occurrence of a clock with its deadline and the explanation of it."""

    model_config = ConfigDict(frozen=True)

    case_ref: str
    clock_id: str
    occurrence: int
    team: str
    title: str
    status: ClockStatus
    start_date: date
    due_date: date
    due_at: datetime
    deadline: Deadline
    explanation: str
    levels_fired: tuple[int, ...]
    closed_by_event_id: str | None
    closed_on: date | None
    updated_at: datetime


class EscalationView(BaseModel):
    """An alert at one level of a clock's ladder, and its acknowledgement if any.

    ``already_acknowledged`` is set only by ``ReadModel.acknowledge``: True when that call
    found an earlier acknowledgement, which it kept (the ``acknowledged_*`` fields are the
    first acknowledgement's).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    case_ref: str
    team: str
    clock_id: str
    clock_title: str
    occurrence: int
    level: int
    level_name: str
    covers_levels: tuple[int, ...]
    state: AlertState
    roles: tuple[str, ...]
    fire_at: datetime
    due_at: datetime
    what_to_do: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement_note: str | None
    already_acknowledged: bool = False

    @property
    def is_open(self) -> bool:
        """Whether nobody has acknowledged the alert yet."""
        return self.acknowledged_at is None


class InboxItemView(BaseModel):
    """An alert in a member of staff's in-app inbox."""

    model_config = ConfigDict(frozen=True)

    staff_code: str
    created_at: datetime
    read_at: datetime | None
    escalation: EscalationView


def case_view(row: Case) -> CaseView:
    """The view of a case row."""
    return CaseView(
        case_ref=row.case_ref,
        definition_id=row.definition_id,
        definition_version=row.definition_version,
        team=row.team_code,
        allocated_worker=row.allocated_worker_code,
        opened_on=row.opened_on,
        closed_on=row.closed_on,
        current_stages=dict(row.current_stages),
        updated_at=row.updated_at,
    )


def clock_view(row: Clock) -> ClockView:
    """The view of a clock row; the stored deadline is validated back into a Deadline."""
    return ClockView(
        case_ref=row.case_ref,
        clock_id=row.clock_id,
        occurrence=row.occurrence,
        team=row.team_code,
        title=row.title,
        status=ClockStatus(row.status),
        start_date=row.start_date,
        due_date=row.due_date,
        due_at=row.due_at,
        deadline=Deadline.model_validate(row.deadline),
        explanation=row.explanation,
        levels_fired=tuple(row.levels_fired),
        closed_by_event_id=row.closed_by_event_id,
        closed_on=row.closed_on,
        updated_at=row.updated_at,
    )


def escalation_view(row: Escalation, team_code: str) -> EscalationView:
    """The view of an escalation row, with the current team of its case."""
    return EscalationView(
        key=row.key,
        case_ref=row.case_ref,
        team=team_code,
        clock_id=row.clock_id,
        clock_title=row.clock_title,
        occurrence=row.occurrence,
        level=row.level,
        level_name=row.level_name,
        covers_levels=tuple(row.covers_levels),
        state=AlertState(row.state),
        roles=tuple(row.roles),
        fire_at=row.fire_at,
        due_at=row.due_at,
        what_to_do=row.what_to_do,
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        acknowledgement_note=row.acknowledgement_note,
    )
