"""Request and response bodies of the HTTP API (pydantic, kept apart from ORM models).

Responses reuse the read model's views (``caseclock.db.views``, ``caseclock.db.oversight``)
where they fit; the bodies here are the ones only the API needs. Fields are added with
defaults and never renamed, because case systems are built against them.
"""

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from caseclock.api.auth import Role
from caseclock.core.events import EventId
from caseclock.db.oversight import EventView, StageEntryView
from caseclock.db.views import CaseView, ClockView, EscalationView
from workflows import case_types

# The case reference and code rules are validators in workflows.case_types; these patterns
# say the same in the OpenAPI document, so that clients (and schemathesis) can see them.
CASE_REF_PATTERN = r"^(?:[0-9]|[A-Za-z0-9][A-Za-z0-9_/-]*[0-9])[A-Za-z0-9_/-]*$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
CaseRef = Annotated[
    case_types.CaseRef,
    WithJsonSchema({"type": "string", "pattern": CASE_REF_PATTERN, "maxLength": 64}),
]
Code = Annotated[
    case_types.Code,
    WithJsonSchema({"type": "string", "pattern": CODE_PATTERN, "maxLength": 64}),
]

DefinitionKey = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9-]{0,63}@[0-9][0-9A-Za-z.+-]{0,31}$",
        description="A definition's ``id@version``, as listed by GET /definitions.",
        examples=["child-protection@2026.1"],
    ),
]
EventType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["referral_received"])]
FieldValue = (
    Annotated[StrictInt, Field(ge=-1_000_000_000, le=1_000_000_000)]
    | Annotated[StrictStr, Field(max_length=2000)]
)


class Body(BaseModel):
    """A request body: unknown keys are refused, so a misspelt field is not silently lost."""

    model_config = ConfigDict(extra="forbid")


class EventIn(Body):
    """An event as a case system or a person reports it.

    ``event_id`` is the idempotency key: sending the same event again changes nothing, and
    reusing an id for different facts is refused (409).
    """

    event_id: EventId = Field(description="The sender's idempotency key for this event.")
    type: EventType = Field(description="An event type of the case's definition.")
    effective_date: date = Field(description="When it happened (ISO date, Europe/London).")
    effective_at: AwareDatetime | None = Field(
        default=None,
        description="When it happened, with a UTC offset; needed for clocks counted in hours.",
    )
    recorded_by: Code | None = Field(
        default=None,
        description="Staff code of who recorded it; defaults to the caller's own staff code "
        "and is required for API tokens that are not tied to a member of staff.",
    )
    outcome: EventType | None = Field(default=None, description="The event's outcome, if any.")
    data: dict[Annotated[str, Field(max_length=64)], FieldValue] = Field(
        default_factory=dict,
        max_length=50,
        description="Fields the definition asks for on this event type.",
    )


class StartCase(Body):
    """Start a case from its referral."""

    case_ref: CaseRef = Field(
        description="The case system's reference: a code with a digit, never a name."
    )
    team: Code = Field(description="Team code of the team holding the case.")
    worker: Code | None = Field(default=None, description="Staff code of the allocated worker.")
    definition: DefinitionKey
    referral: EventIn = Field(description="The event that opens the case (its referral).")


class CaseStarted(BaseModel):
    """What starting a case did."""

    case_ref: str
    started: bool = Field(description="False when this exact start had already been made.")
    recorded: bool = Field(description="Whether the read model has caught up with the case.")
    location: str = Field(description="Where to read the case.")


class EventRecorded(BaseModel):
    """What recording an event did."""

    case_ref: str
    event_id: str
    duplicate: bool = Field(description="True when this event had already been recorded.")
    stages: dict[str, str] = Field(description="The stage of each track after the event.")


class Oversight(BaseModel):
    """An acknowledged alert: recorded management oversight of the case."""

    key: str
    clock_id: str
    level: int
    level_name: str
    acknowledged_by: str
    acknowledged_at: datetime
    note: str


class CaseDetail(BaseModel):
    """A case: stages, events, clocks (each deadline explained), escalations, oversight."""

    case: CaseView
    stage_history: list[StageEntryView]
    events: list[EventView]
    open_clocks: list[ClockView]
    met_clocks: list[ClockView]
    cancelled_clocks: list[ClockView]
    escalations: list[EscalationView]
    management_oversight: list[Oversight]


class Acknowledge(Body):
    """Acknowledge an alert: you have seen it and acted; the note says what you did."""

    note: str = Field(min_length=1, max_length=2000, description="What was done about it.")
    acknowledged_by: Code | None = Field(
        default=None,
        description="Staff code of the manager acknowledging; defaults to the caller's own "
        "and is required for API tokens that are not tied to a member of staff.",
    )


class CreateToken(Body):
    """Issue an API token."""

    role: Role
    label: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="What the token is for (e.g. the case system's name).",
    )
    staff_code: Code | None = Field(
        default=None,
        description="Ties the token to a member of staff; required for the manager and "
        "practitioner roles, whose scope comes from the directory.",
    )


class TokenIssued(BaseModel):
    """A new token. ``token`` is shown only this once: store it now."""

    token: str
    id: str
    role: Role
    label: str
    staff_code: str | None
    created_at: datetime


class DefinitionSummary(BaseModel):
    """A loaded definition, in brief."""

    key: str
    id: str
    version: str
    title: str
    description: str
    events: list[str]
    clocks: dict[str, str] = Field(description="Clock id to title.")


class RoleInfo(BaseModel):
    """A role of the API or a job role of the directory, with what it means."""

    role: str
    description: str


class Roles(BaseModel):
    """API roles (what a caller may do) and job roles (who is told, in ladder order)."""

    api_roles: list[RoleInfo]
    job_roles: list[RoleInfo]


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    checks: dict[str, str] = {}
