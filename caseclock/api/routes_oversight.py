"""Routes for managers' oversight: list clocks and escalations, acknowledge an escalation.

Lists are narrowed to the caller's scope (a manager's teams, a practitioner's own cases)
before any filter applies, and are bounded to 1,000 rows: narrow them with the filters.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from caseclock.api.auth import Caller, Principal, Role, require
from caseclock.api.problems import FieldProblem, ProblemError, problem_responses
from caseclock.api.schemas import Acknowledge, Code
from caseclock.api.services import Services
from caseclock.core.actions import AlertState, ClockStatus
from caseclock.db import UnknownEscalationError
from caseclock.db.oversight import ClockFilter, EscalationFilter
from caseclock.db.views import ClockView, EscalationView

router = APIRouter(tags=["oversight"])

Acknowledger = Annotated[
    Principal, Depends(require(Role.MANAGER, Role.LEADER, Role.ADMIN, Role.INTEGRATION))
]
TeamQuery = Annotated[Code | None, Query(description="Only this team's cases.")]
DueBefore = Annotated[
    datetime | None,
    Query(description="Only those due before this instant (ISO 8601 with a UTC offset)."),
]
DueAfter = Annotated[
    datetime | None,
    Query(description="Only those due at or after this instant (ISO 8601 with a UTC offset)."),
]


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ProblemError(
            422,
            "invalid-request",
            "The request is not valid",
            f"{name} needs a UTC offset (e.g. 2026-01-31T17:00:00Z)",
            [FieldProblem(field=f"query.{name}", reason="needs a UTC offset")],
        )
    return value


@router.get(
    "/escalations",
    response_model=list[EscalationView],
    summary="List escalations",
    responses=problem_responses(401, 403, 422),
)
async def list_escalations(
    principal: Caller,
    services: Services,
    team: TeamQuery = None,
    level: Annotated[int | None, Query(ge=1, le=20, description="Only this level.")] = None,
    min_level: Annotated[int | None, Query(ge=1, le=20, description="This level up.")] = None,
    state: Annotated[AlertState | None, Query(description="due_soon or overdue.")] = None,
    acknowledged: Annotated[
        bool | None, Query(description="true: acknowledged only; false: open only.")
    ] = None,
    due_before: DueBefore = None,
    due_after: DueAfter = None,
) -> list[EscalationView]:
    """Escalations in your scope, highest level first, then the soonest due."""
    where = EscalationFilter(
        team=team,
        level=level,
        min_level=min_level,
        state=state,
        acknowledged=acknowledged,
        due_before=_aware("due_before", due_before),
        due_after=_aware("due_after", due_after),
    )
    rows = await services.oversight.escalations(await services.scope(principal), where)
    await services.casework.audit(
        principal.actor, "escalations.list", None, team=team, rows=len(rows)
    )
    return rows


@router.get(
    "/clocks",
    response_model=list[ClockView],
    summary="List clocks",
    responses=problem_responses(401, 403, 422),
)
async def list_clocks(
    principal: Caller,
    services: Services,
    team: TeamQuery = None,
    status: Annotated[ClockStatus | None, Query(description="Only clocks in this state.")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: running past their deadline; false: the rest.")
    ] = None,
    due_before: DueBefore = None,
    due_after: DueAfter = None,
) -> list[ClockView]:
    """Clock occurrences in your scope, soonest due first, each with its explanation."""
    where = ClockFilter(
        team=team,
        status=status,
        overdue=overdue,
        due_before=_aware("due_before", due_before),
        due_after=_aware("due_after", due_after),
    )
    rows = await services.oversight.clocks(
        await services.scope(principal), where, datetime.now(UTC)
    )
    await services.casework.audit(principal.actor, "clocks.list", None, team=team, rows=len(rows))
    return rows


@router.post(
    "/escalations/{key:path}/acknowledge",
    response_model=EscalationView,
    summary="Acknowledge an escalation",
    responses=problem_responses(401, 403, 404, 422),
)
async def acknowledge(
    key: Annotated[
        str,
        Path(
            max_length=128,
            description="The escalation's key: {case_ref}/{clock_id}/{occurrence}/{level}.",
        ),
    ],
    body: Acknowledge,
    principal: Acknowledger,
    services: Services,
) -> EscalationView:
    """Record that you have seen an alert and acted: management oversight, shown on the case.

    The first acknowledgement stands; acknowledging again changes nothing and answers with
    ``already_acknowledged: true`` and the first one's who, when and note. A person
    acknowledges as themselves; a case system's token names the manager.
    """
    try:
        escalation = await services.casework.escalation(key)
    except UnknownEscalationError as error:
        raise ProblemError(
            404,
            "unknown-escalation",
            "Unknown escalation",
            str(error),
            [FieldProblem(field="key", reason="no escalation has this key")],
        ) from error
    await services.case_for(principal, escalation.case_ref, "escalation.acknowledge")
    staff_code = _acknowledger(body, principal)
    return await services.casework.acknowledge(principal.actor, escalation, staff_code, body.note)


def _acknowledger(body: Acknowledge, principal: Principal) -> str:
    if principal.staff_code is not None:
        if body.acknowledged_by not in (None, principal.staff_code):
            raise ProblemError(
                422,
                "invalid-request",
                "The request is not valid",
                "a member of staff acknowledges an alert as themselves",
                [FieldProblem(field="acknowledged_by", reason="must be your own staff code")],
            )
        return principal.staff_code
    staff_code = body.acknowledged_by or principal.staff_code
    if staff_code is None:
        raise ProblemError(
            422,
            "invalid-request",
            "The request is not valid",
            "say which manager acknowledges: this API token is not tied to a member of staff",
            [FieldProblem(field="acknowledged_by", reason="is required")],
        )
    return staff_code
