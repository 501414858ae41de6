"""Typed inputs and results of the case workflow, its updates and queries (STYLE point 3)."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, WrapValidator

from caseclock.calendar import WorkingCalendar, intern_calendar
from caseclock.core.actions import ClockSnapshot
from caseclock.core.events import CaseEvent
from caseclock.core.state import CaseState
from caseclock.definition.intern import definition_as_text, intern_definition
from caseclock.definition.schema import Definition

_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/-]{0,63}$")
_STAFF_OR_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_case_ref(value: str) -> str:
    # A case reference is the case system's code; requiring a digit keeps names out of
    # workflow ids ("JaneSmith" is refused, "LA-000123" is fine).
    if not _CASE_REF.match(value) or not any(char.isdigit() for char in value):
        msg = (
            "a case reference is a code of letters, digits, '-', '_' or '/' with at least one "
            "digit (at most 64 characters); never a name"
        )
        raise ValueError(msg)
    return value


def _check_code(value: str) -> str:
    if not _STAFF_OR_TEAM.match(value):
        raise ValueError("must be a code of letters, digits, '.', '_' or '-' (at most 64)")
    return value


CaseRef = Annotated[str, AfterValidator(_check_case_ref)]
Code = Annotated[str, AfterValidator(_check_code)]


def workflow_id_for(case_ref: str) -> str:
    """The workflow id of a case: derived from the case reference only."""
    return f"case/{_check_case_ref(case_ref)}"


class Allocation(BaseModel):
    """Who holds the case: the team and, once allocated, the worker (staff codes)."""

    model_config = ConfigDict(frozen=True)

    team: Code
    worker: Code | None = None


class CaseWorkflowInput(BaseModel):
    """Everything a case needs; also what it carries across continue-as-new."""

    case_ref: CaseRef
    allocation: Allocation
    # Every case of a version shares one parsed definition in the worker (less memory per
    # cached case). Written as JSON text, so that decoding a case's input looks the
    # definition up by its text instead of parsing it (caseclock/definition/intern.py);
    # inputs written as an object still decode.
    definition: Annotated[
        Definition,
        WrapValidator(intern_definition),
        PlainSerializer(definition_as_text, when_used="json"),
    ]
    # Shared likewise, one parsed calendar per content (caseclock.calendar.intern_calendar);
    # written as an object, as before.
    calendar: Annotated[WorkingCalendar, WrapValidator(intern_calendar)]
    state: CaseState | None = None
    # Events applied when the case starts (normally its referral), so starting a case
    # and recording its first event is one durable step.
    initial_events: list[CaseEvent] = []
    # Continue as new once history passes this many events (well below Temporal's 51,200
    # limit and its 10,240 warning), or sooner if the server suggests it.
    history_limit: int = 2_000
    runs: int = 1
    # Alerts are planned for the sweep (see caseclock.core.forecast): every alert due by
    # ``planned_through`` is in the read model's plan; at ``replan_at`` (if any) the case
    # raises the next alert itself and plans again. Carried across continue-as-new.
    planned_through: datetime | None = None
    replan_at: datetime | None = None


class RecordEventInput(BaseModel):
    """An event to record on the case."""

    event: CaseEvent


class RecordEventResult(BaseModel):
    """What recording an event did: whether it was new, and the case's stages after it."""

    event_id: str
    duplicate: bool
    stages: dict[str, str]


class CaseWorkflowResult(BaseModel):
    """What a case's workflow returns when the case closes: reopening continues from it."""

    summary: "CaseSummary"
    state: CaseState


class CaseSummary(BaseModel):
    """A case's clocks and stages as the workflow holds them (the query result)."""

    case_ref: str
    allocation: Allocation
    definition_id: str
    definition_version: str
    calendar_id: str
    stages: dict[str, str]
    clocks: list[ClockSnapshot]
    next_wakeup: datetime | None
    explanations: dict[str, str]
    runs: int
