"""Routes about one case: start it, record an event on it, read it.

A case reference may contain ``/``, so it is matched as a path. Every read of a case and
every change is audited by ``caseclock.casework``; a refusal for scope is audited by the
services before its 403.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from caseclock.api.auth import Principal, Role, require
from caseclock.api.problems import FieldProblem, ProblemError, from_rejections, problem_responses
from caseclock.api.schemas import (
    CaseDetail,
    CaseRef,
    CaseStarted,
    EventIn,
    EventRecorded,
    Oversight,
    StartCase,
)
from caseclock.api.services import Services
from caseclock.casework import (
    CaseConflictError,
    DuplicateEventError,
    UnknownDefinitionError,
)
from caseclock.core.events import CaseEvent, EventRejectedError
from caseclock.db.deliveries import utc_now
from workflows.case_types import Allocation

router = APIRouter(prefix="/cases", tags=["cases"])

Writer = Annotated[
    Principal,
    Depends(require(Role.INTEGRATION, Role.ADMIN, Role.MANAGER, Role.PRACTITIONER)),
]
Reader = Annotated[Principal, Depends(require(*Role))]
CaseRefPath = Annotated[
    CaseRef,
    Path(description="The case reference (a code; may contain '/').", examples=["LA-000123"]),
]


def _event(body: EventIn, principal: Principal, field_prefix: str) -> CaseEvent:
    recorded_by = body.recorded_by or principal.staff_code
    if recorded_by is None:
        raise ProblemError(
            422,
            "invalid-request",
            "The request is not valid",
            "say who recorded the event: this API token is not tied to a member of staff",
            [FieldProblem(field=f"{field_prefix}recorded_by", reason="is required")],
        )
    return CaseEvent(
        event_id=body.event_id,
        type=body.type,
        effective_date=body.effective_date,
        effective_at=body.effective_at,
        recorded_at=utc_now(),
        recorded_by=recorded_by,
        outcome=body.outcome,
        data=dict(body.data),
    )


def _rejected(error: EventRejectedError, prefix: str = "") -> ProblemError:
    if isinstance(error, DuplicateEventError):
        return ProblemError(
            409,
            "duplicate-event-id",
            "Event id already used for other facts",
            str(error),
            from_rejections(error.rejections, prefix),
        )
    return ProblemError(
        422,
        "event-rejected",
        "The event is not allowed now",
        str(error),
        from_rejections(error.rejections, prefix),
    )


def _conflict(error: CaseConflictError) -> ProblemError:
    title = "Case closed" if error.kind == "case-closed" else "Case already open"
    return ProblemError(
        409, error.kind, title, error.reason, [FieldProblem(field="case_ref", reason=error.reason)]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseStarted,
    summary="Start a case from a referral",
    responses={
        200: {"model": CaseStarted, "description": "This exact start had already been made."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def start_case(
    body: StartCase, principal: Writer, services: Services, response: Response
) -> CaseStarted:
    """Start a case's durable workflow with its referral as the first event.

    The referral is checked by the same core the workflow runs before anything is started,
    so a refused referral starts nothing (422, with each field's reason). Sending the same
    start again (same case reference and referral event id) changes nothing and answers 200;
    a different referral for an open case is a conflict (409). The answer comes once the
    case can be read with GET /cases/{case_ref}.
    """
    await services.check_scope(principal, body.case_ref, body.team, body.worker, "case.start")
    referral = _event(body.referral, principal, "referral.")
    try:
        result = await services.casework.start(
            principal.actor,
            body.case_ref,
            body.definition,
            Allocation(team=body.team, worker=body.worker),
            referral,
        )
    except UnknownDefinitionError as error:
        raise ProblemError(
            422,
            "unknown-definition",
            "Unknown definition",
            str(error),
            [FieldProblem(field="definition", reason=str(error))],
        ) from error
    except CaseConflictError as error:
        raise _conflict(error) from error
    except EventRejectedError as error:
        raise _rejected(error, "referral.") from error
    location = f"/api/v1/cases/{result.case_ref}"
    response.headers["Location"] = location
    if not result.started:
        response.status_code = status.HTTP_200_OK
    return CaseStarted(
        case_ref=result.case_ref,
        started=result.started,
        recorded=result.recorded,
        location=location,
    )


@router.post(
    "/{case_ref:path}/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventRecorded,
    summary="Record an event on a case",
    responses={
        200: {"model": EventRecorded, "description": "This event had already been recorded."},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def post_event(
    case_ref: CaseRefPath,
    body: EventIn,
    principal: Writer,
    services: Services,
    response: Response,
) -> EventRecorded:
    """Record an event (with its effective date, who recorded it, and its id).

    The core checks the event against the case's definition and current stages before
    anything changes: an event not allowed now is refused with every reason (422); an
    event id reused for different facts is refused (409); a resend of the same event
    changes nothing (200). A new event answers 201 once its facts and any alerts it caused
    are recorded.
    """
    case = await services.case_for(principal, case_ref, "case.event")
    event = _event(body, principal, "")
    try:
        result = await services.casework.record(principal.actor, case, event)
    except CaseConflictError as error:
        raise _conflict(error) from error
    except EventRejectedError as error:
        raise _rejected(error) from error
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return EventRecorded(
        case_ref=case.case_ref,
        event_id=result.event_id,
        duplicate=result.duplicate,
        stages=result.stages,
    )


@router.get(
    "/{case_ref:path}",
    response_model=CaseDetail,
    summary="Read a case",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_case(case_ref: CaseRefPath, principal: Reader, services: Services) -> CaseDetail:
    """A case's stages, events, open and met clocks, escalations and management oversight.

    Each clock carries its deadline and the explanation of it (rule, version, start event,
    unit, counting convention, calendar, due instant). Managers see the cases of the teams
    they manage, practitioners the cases allocated to them. Every read is audited.
    """
    case = await services.case_for(principal, case_ref, "case.read")
    record = await services.casework.read(principal.actor, case)
    oversight = [
        Oversight(
            key=row.key,
            clock_id=row.clock_id,
            level=row.level,
            level_name=row.level_name,
            acknowledged_by=row.acknowledged_by or "",
            acknowledged_at=row.acknowledged_at,
            note=row.acknowledgement_note or "",
        )
        for row in record.escalations
        if row.acknowledged_at is not None
    ]
    return CaseDetail(
        case=record.case,
        stage_history=record.stage_history,
        events=record.events,
        open_clocks=record.open_clocks,
        met_clocks=record.met_clocks,
        cancelled_clocks=record.cancelled_clocks,
        escalations=record.escalations,
        management_oversight=oversight,
    )
