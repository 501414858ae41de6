"""Error pages: every refusal or failure of a dashboard page is an HTML page a person can act on.

The API's problem details (a case out of scope, an unknown case) become pages with the
same status and reason; a missing session becomes a redirect to the sign-in page (or a 401
for the inbox script, which then stops polling). An unexpected error is logged by type only.
"""

from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from caseclock.api.problems import ProblemError
from caseclock.dashboard.context import Dashboard, DashboardError, SignInRequiredError

FRAGMENT_PATHS = ("/inbox/items",)
TITLES = {
    400: "There is a problem with the request",
    401: "Sign in to continue",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "There is a problem with the request",
    422: "There is a problem with the request",
    503: "Sorry, the service is unavailable",
}


def _page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    board: Dashboard = request.app.state.dashboard
    session = board.cookies.session(request)
    return board.page(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail},
        session,
        status=status,
    )


async def _sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequiredError)  # noqa: S101 (registered for this type)
    if request.url.path in FRAGMENT_PATHS:
        return Response("sign in again", status_code=401, media_type="text/plain")
    next_path = error.next_path
    if request.method != "GET":
        # A form posted after the session ended: nothing was done; back to its page after.
        path = request.url.path
        next_path = path.rsplit("/", 1)[0] if path.startswith("/escalations/") else "/"
    response = RedirectResponse(f"/sign-in?next={quote(next_path, safe='/')}", status_code=303)
    if request.method != "GET":
        board: Dashboard = request.app.state.dashboard
        board.cookies.flash(
            response,
            "information",
            "Your session had ended, so nothing was changed. "
            "Sign in again and send the form again.",
        )
    return response


async def _dashboard_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DashboardError)  # noqa: S101 (registered for this type)
    return _page(request, error.status, error.title, error.detail)


async def _problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)  # noqa: S101 (registered for this type)
    title = TITLES.get(error.status, error.title)
    if error.slug == "unknown-case":
        title = "Case not found"
    return _page(request, error.status, title, error.detail[:1].upper() + error.detail[1:] + ".")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101 (registered for this type)
    board: Dashboard = request.app.state.dashboard
    if board.cookies.session(request) is None and not request.url.path.startswith("/static/"):
        # Signed out, a missing page is like any other: sign in first (nothing is revealed).
        query = request.url.query
        return await _sign_in(
            request, SignInRequiredError(request.url.path + (f"?{query}" if query else ""))
        )
    detail = {
        404: "If you typed the web address, check it is correct. If you pasted it, check you "
        "copied the entire address.",
        405: "This page cannot be used that way. Go back and try again.",
    }.get(error.status_code, "Go back and try again.")
    title = TITLES.get(error.status_code, "There is a problem with the request")
    return _page(request, error.status_code, title, detail)


async def _temporal_unavailable(request: Request, error: Exception) -> Response:
    structlog.get_logger(__name__).warning(
        "dashboard_temporal_unavailable", error_type=type(error).__name__
    )
    return _page(
        request,
        503,
        TITLES[503],
        "The workflow engine did not answer. Nothing was changed; try again in a few moments.",
    )


async def _unexpected(request: Request, error: Exception) -> Response:
    structlog.get_logger(__name__).error(
        "dashboard_unexpected_error", path=request.url.path, error_type=type(error).__name__
    )
    return HTMLResponse(
        "<!DOCTYPE html><html lang=en><title>Sorry, there is a problem with the service"
        "</title><h1>Sorry, there is a problem with the service</h1><p>Try again later. "
        "Nothing was changed by this error.</p></html>",
        status_code=500,
    )


def install_error_pages(app: FastAPI) -> None:
    """Turn the dashboard's errors into HTML pages (or a redirect to sign in)."""
    app.add_exception_handler(SignInRequiredError, _sign_in)
    app.add_exception_handler(DashboardError, _dashboard_error)
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RPCError, _temporal_unavailable)
    app.add_exception_handler(Exception, _unexpected)
