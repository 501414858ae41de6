"""The escalation inbox, one escalation's page, and acknowledging or reassigning an alert.

Alerts link to ``/escalations/<key>``. Acknowledging goes through ``caseclock.casework``,
exactly as the API's acknowledge route does: scope checked (a refusal audited), the first
acknowledgement kept, the change audited, and the note shown on the case as management
oversight. Reassigning moves the alert to another manager of the case's line. Both are
POST forms with the session's CSRF token, answered with a redirect (post/redirect/get).
"""

import hashlib
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseclock.calendar import local_date
from caseclock.dashboard.context import (
    OVERSIGHT_ROLES,
    Board,
    DashboardError,
    Form,
    Person,
    field,
    require_role,
)
from caseclock.dashboard.labels import humanise
from caseclock.dashboard.queries import REASSIGN_ACTION, Colleague
from caseclock.dashboard.session import Session
from caseclock.dashboard.why import explain
from caseclock.db import UnknownEscalationError
from caseclock.db.views import ClockView, EscalationView

router = APIRouter()
NOTE_LIMIT = 2000


async def open_items(board: Board, person: Session) -> list[EscalationView]:
    """Open alerts in the person's inbox that are in their scope, most urgent first."""
    if person.staff_code is None:
        return []
    scope = await board.services.scope(person.principal)
    items = []
    for item in await board.read_model.inbox(person.staff_code):
        if not item.escalation.is_open:
            continue
        # Only cases still in the person's scope (a case may have moved team since).
        case = await board.read_model.get_case(item.escalation.case_ref)
        if case is not None and scope.allows(case.team, case.allocated_worker):
            items.append(item.escalation)
    return sorted(items, key=lambda row: (-row.level, row.due_at, row.key))


def _version(items: list[EscalationView]) -> str:
    return hashlib.sha256("|".join(item.key for item in items).encode()).hexdigest()[:16]


def _summary(items: list[EscalationView]) -> str:
    count = len(items)
    return f"{count} open escalation{'' if count == 1 else 's'}"


def _inbox_context(board: Board, items: list[EscalationView]) -> dict[str, object]:
    return {
        "items": items,
        "version": _version(items),
        "summary": _summary(items),
        "now": datetime.now(UTC),
        "humanise": humanise,
        "poll_seconds": board.poll_seconds,
    }


@router.get("/inbox", include_in_schema=False)
async def inbox(request: Request, board: Board, person: Person) -> HTMLResponse:
    """Open escalations addressed to the signed-in person."""
    items = await open_items(board, person)
    await board.services.casework.audit(
        person.actor, "inbox.list", None, rows=len(items), via=person.via
    )
    context = {"title": "Escalation inbox", **_inbox_context(board, items)}
    return board.page(request, "inbox.html", context, person)


@router.get("/inbox/items", include_in_schema=False)
async def inbox_items(board: Board, person: Person) -> HTMLResponse:
    """The inbox's list alone, for the script that refreshes it."""
    items = await open_items(board, person)
    return HTMLResponse(board.templates.render("_inbox_items.html", _inbox_context(board, items)))


async def _escalation(board: Board, key: str) -> EscalationView:
    try:
        return await board.services.casework.escalation(key)
    except UnknownEscalationError as error:
        raise DashboardError(
            404, "Escalation not found", f"No escalation has the key {key}. Check the link."
        ) from error


async def _clock(board: Board, escalation: EscalationView) -> ClockView | None:
    for clock in await board.read_model.list_clocks(escalation.case_ref):
        if (clock.clock_id, clock.occurrence) == (escalation.clock_id, escalation.occurrence):
            return clock
    return None


async def _colleagues(board: Board, team: str, person: Session) -> list[Colleague]:
    found = await board.queries.colleagues(team, local_date(datetime.now(UTC)))
    return [colleague for colleague in found if colleague.code != person.staff_code]


async def _escalation_page(
    request: Request,
    board: Board,
    person: Session,
    escalation: EscalationView,
    errors: list[dict[str, str]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    can_act = person.has(*OVERSIGHT_ROLES) and person.staff_code is not None
    clock = await _clock(board, escalation)
    rungs: list[str] = []
    if clock is not None:
        key = f"{clock.deadline.definition_id}@{clock.deadline.definition_version}"
        rungs = board.labels.rungs(key, escalation.clock_id)
    covered = [
        humanise(rungs[level]).lower()
        for level in escalation.covers_levels
        if level != escalation.level and level < len(rungs)
    ]
    return board.page(
        request,
        "escalation.html",
        {
            "title": f"{escalation.clock_title}: {escalation.case_ref}",
            "escalation": escalation,
            "clock": clock,
            "why": explain(clock, board.labels, datetime.now(UTC)) if clock else None,
            "covered": covered,
            "colleagues": await _colleagues(board, escalation.team, person) if can_act else [],
            "can_act": can_act and escalation.is_open,
            "names": await board.queries.staff_names(),
            "humanise": humanise,
            "errors": errors or [],
            "values": values or {},
            "note_limit": NOTE_LIMIT,
            "now": datetime.now(UTC),
        },
        person,
        status,
    )


async def _in_scope(board: Board, person: Session, escalation: EscalationView, action: str) -> None:
    """Refuse (403, audited by the API's services) an alert of a case out of scope."""
    await board.services.case_for(person.principal, escalation.case_ref, action)


@router.get("/escalations/{key:path}", include_in_schema=False)
async def escalation_page(key: str, request: Request, board: Board, person: Person) -> Response:
    """One escalation: what is late, why, and the forms to acknowledge or reassign it."""
    escalation = await _escalation(board, key)
    await _in_scope(board, person, escalation, "escalation.read")
    await board.services.casework.audit(
        person.actor, "escalation.read", escalation.case_ref, key=key, via=person.via
    )
    if person.staff_code is not None:
        await board.read_model.mark_inbox_read(person.staff_code, key)
    return await _escalation_page(request, board, person, escalation)


@router.post("/escalations/{key:path}/acknowledge", include_in_schema=False)
async def acknowledge(
    key: str, request: Request, board: Board, person: Person, form: Form
) -> Response:
    """Acknowledge an alert with a note: management oversight, shown on the case."""
    escalation = await _escalation(board, key)
    await _in_scope(board, person, escalation, "escalation.acknowledge")
    require_role(person, OVERSIGHT_ROLES, "Acknowledging an alert")
    note = field(form, "note")
    problem = None
    if not note:
        problem = "Enter what you have done or decided about this alert"
    elif len(note) > NOTE_LIMIT:
        problem = f"The note must be {NOTE_LIMIT:,} characters or fewer"
    if problem is not None or person.staff_code is None:
        text = problem or "Your account is not linked to a member of staff"
        errors = [{"field": "note", "text": text}]
        return await _escalation_page(
            request, board, person, escalation, errors, {"note": note}, status=422
        )
    result = await board.services.casework.acknowledge(
        person.actor, escalation, person.staff_code, note
    )
    response = RedirectResponse("/inbox", status_code=303)
    if result.already_acknowledged:
        names = await board.queries.staff_names()
        who = result.acknowledged_by or ""
        board.cookies.flash(
            response,
            "information",
            f"The alert for {escalation.case_ref} had already been acknowledged by "
            f"{names.get(who, who)}; their note stands.",
        )
    else:
        board.cookies.flash(
            response,
            "success",
            f"You acknowledged the alert for {escalation.case_ref} ({escalation.clock_title}). "
            "Your note is recorded as management oversight on the case.",
        )
    return response


@router.post("/escalations/{key:path}/reassign", include_in_schema=False)
async def reassign(
    key: str, request: Request, board: Board, person: Person, form: Form
) -> Response:
    """Move an alert to another manager of the case's line."""
    escalation = await _escalation(board, key)
    await _in_scope(board, person, escalation, "escalation.reassign")
    require_role(person, OVERSIGHT_ROLES, "Reassigning an alert")
    target = field(form, "to")
    colleagues = {c.code: c for c in await _colleagues(board, escalation.team, person)}
    if target not in colleagues or person.staff_code is None or not escalation.is_open:
        text = (
            "This alert has been acknowledged, so it cannot be reassigned"
            if not escalation.is_open
            else "Select the manager to reassign this alert to"
        )
        return await _escalation_page(
            request, board, person, escalation, [{"field": "to", "text": text}], status=422
        )
    await board.queries.reassign(key, person.staff_code, target)
    await board.services.casework.audit(
        person.actor,
        REASSIGN_ACTION,
        escalation.case_ref,
        key=key,
        from_staff=person.staff_code,
        to_staff=target,
        via=person.via,
    )
    response = RedirectResponse("/inbox", status_code=303)
    board.cookies.flash(
        response,
        "success",
        f"You reassigned the alert for {escalation.case_ref} to {colleagues[target].name}.",
    )
    return response
