"""Signing in and out.

- **OpenID Connect** (production): the organisation's identity provider, or a proxy in front
  of Caseclock that signed the person in, posts their ID token (a JWT) to
  ``POST /sign-in/token`` (a form field ``id_token``, as the ``form_post`` response mode
  does, or an ``Authorization: Bearer`` header). It is verified exactly as the API verifies
  a person's bearer token: issuer, audience, signature against the published keys, expiry;
  the roles and staff code come from the same claims.
- **Development sign-in**: in development only (``settings.auth.dev_sign_in``), a page lists
  the people in the directory and signs you in as the one you choose, with the roles of
  their job: social workers as practitioners, managers as managers, the director as a leader.

Either way the session is a signed cookie (``caseclock.dashboard.session``). Signing out
needs the session's CSRF token, so another site cannot sign a person out.
"""

from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.responses import RedirectResponse, Response

from caseclock.api.auth import Principal, Role, bearer_value
from caseclock.api.problems import ProblemError
from caseclock.dashboard.context import Board, DashboardError, Form, field, same_origin
from caseclock.dashboard.labels import JOB_ROLES
from caseclock.dashboard.session import new_session

router = APIRouter()

# The roles a job in the directory carries when signing in for development.
DEV_ROLES = {
    "social_worker": Role.PRACTITIONER,
    "team_manager": Role.MANAGER,
    "service_manager": Role.MANAGER,
    "head_of_service": Role.MANAGER,
    "director": Role.LEADER,
}


def safe_next(value: str | None) -> str:
    """A local path to return to after signing in; anything else goes home."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _sign_in_page(
    request: Request, board: Board, next_path: str, errors: list[dict[str, str]], status: int
) -> Response:
    people = []
    if board.dev_sign_in:
        staff = await board.services.directory.staff()
        order = list(JOB_ROLES)
        people = sorted(
            (person for person in staff if person.active),
            key=lambda person: (order.index(person.role.value), person.team or "", person.code),
        )
    token, cookie = board.cookies.form_token(request) if board.dev_sign_in else ("", None)
    response = board.page(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "next": next_path,
            "people": people,
            "job_roles": JOB_ROLES,
            "dev_sign_in": board.dev_sign_in,
            "oidc": bool(board.services.settings.auth.oidc_issuer),
            "errors": errors,
            "form_token": token,
        },
        None,
        status,
    )
    if cookie is not None:
        board.cookies.set_form_cookie(response, cookie)
    return response


@router.get("/sign-in", include_in_schema=False)
async def sign_in(request: Request, board: Board, next: str | None = None) -> Response:
    """The sign-in page (people already signed in go on to where they were going)."""
    if board.cookies.session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return await _sign_in_page(request, board, safe_next(next), [], 200)


@router.post("/sign-in/dev", include_in_schema=False)
async def dev_sign_in(request: Request, board: Board) -> Response:
    """Development only: sign in as a person chosen from the directory."""
    if not board.dev_sign_in:
        raise DashboardError(404, "Page not found", "Development sign-in is switched off.")
    form = await request.form()
    next_path = safe_next(field(form, "next"))
    token = field(form, "form_token")
    if not same_origin(request) or not board.cookies.form_token_ok(request, token):
        raise DashboardError(
            403, "This form has expired", "Go back to the sign-in page and try again."
        )
    code = field(form, "staff_code")
    person = await board.services.directory.one_staff(code) if code else None
    if person is None or not person.active:
        errors = [{"field": "staff_code", "text": "Select who you want to sign in as"}]
        return await _sign_in_page(request, board, next_path, errors, 422)
    principal = Principal(
        actor=person.code,
        roles=frozenset({DEV_ROLES[person.role.value]}),
        staff_code=person.code,
        via="dashboard:dev",
    )
    return await _start(board, principal, person.display_name, next_path)


@router.post("/sign-in/token", include_in_schema=False)
async def token_sign_in(
    request: Request,
    board: Board,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Sign in with an OpenID Connect ID token posted by the identity provider or a proxy."""
    if not board.services.settings.auth.oidc_issuer:
        raise DashboardError(404, "Page not found", "OpenID Connect is not configured.")
    form = await request.form()
    credential = field(form, "id_token")
    try:
        credential = credential or bearer_value(authorization) or ""
        principal = await board.services.authenticator.authenticate(credential)
    except ProblemError as error:
        raise DashboardError(401, "You could not be signed in", error.detail) from error
    if principal.via != "oidc":
        raise DashboardError(
            401,
            "You could not be signed in",
            "Sign in with your organisation's account. API tokens are for case systems.",
        )
    if not principal.roles:
        raise DashboardError(
            403,
            "You do not have access to Caseclock",
            "Your account has no Caseclock role. Ask your administrator to give you one.",
        )
    return await _start(board, principal, "", safe_next(field(form, "next")))


async def _start(board: Board, principal: Principal, name: str, next_path: str) -> Response:
    """Start a session for someone whose identity is established, and go on."""
    if not name and principal.staff_code:
        person = await board.services.directory.one_staff(principal.staff_code)
        name = person.display_name if person else ""
    session = new_session(principal, name or principal.actor)
    response = RedirectResponse(next_path, status_code=303)
    board.cookies.start(response, session)
    await board.services.casework.audit(
        principal.actor, "dashboard.sign_in", None, via=principal.via
    )
    structlog.get_logger(__name__).info(
        "dashboard_sign_in", actor=principal.actor, via=principal.via
    )
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, board: Board, form: Form) -> Response:
    """End the session and say so on the sign-in page."""
    del form  # checked for the session's CSRF token
    response = RedirectResponse("/sign-in", status_code=303)
    board.cookies.end(response)
    board.cookies.flash(response, "success", "You have signed out.")
    session = board.cookies.session(request)
    if session is not None:
        await board.services.casework.audit(session.actor, "dashboard.sign_out", None)
    return response
