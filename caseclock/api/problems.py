"""Errors as RFC 9457 problem details: every 4xx names the field at fault and the reason.

Routes raise :class:`ProblemError`; :func:`install_problem_handlers` turns it, FastAPI's
request validation errors and Starlette's HTTP errors (unknown route, wrong method) into
``application/problem+json`` bodies. An unexpected exception becomes a 500 problem whose
body says nothing about its cause, and whose log line carries its type, never its message
(a message may quote a payload).
"""

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from caseclock.core.events import Rejection

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:caseclock:problem:"


class FieldProblem(BaseModel):
    """One thing wrong with a request: the field at fault (None: the whole request) and why."""

    model_config = ConfigDict(frozen=True)

    field: str | None
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem-details body, with the problems of each field in ``errors``."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] = []


class ProblemError(Exception):
    """Raised by routes: becomes a problem-details response.

    Args:
        status: The HTTP status.
        slug: The problem type, appended to ``urn:caseclock:problem:``.
        title: A short summary that is the same for every problem of this type.
        detail: What went wrong this time, for a person.
        errors: The fields at fault, each with its reason.
        headers: Extra response headers (``WWW-Authenticate`` for 401).

    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        errors: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        # Every problem names at least one field (None: the request as a whole).
        self.errors = list(errors) or [FieldProblem(field=None, reason=detail)]
        self.headers = headers

    def problem(self, instance: str | None = None) -> Problem:
        """The body of the response."""
        return Problem(
            type=PROBLEM_TYPE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        )


def from_rejections(rejections: Sequence[Rejection], prefix: str = "") -> list[FieldProblem]:
    """The core's rejections as field problems; ``prefix`` places them inside the body."""
    return [
        FieldProblem(
            field=f"{prefix}{rejection.field}" if rejection.field else prefix.rstrip(".") or None,
            reason=rejection.reason,
        )
        for rejection in rejections
    ]


def problem_response(error: ProblemError, instance: str | None = None) -> JSONResponse:
    """The response for a problem."""
    return JSONResponse(
        error.problem(instance).model_dump(mode="json"),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _field_of(location: Sequence[Any]) -> str | None:
    # ("body", "referral", "effective_date") -> "referral.effective_date";
    # ("query", "due_before") -> "query.due_before": a body field needs no prefix.
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _reason_of(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', message)})"
    return message


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)  # noqa: S101 (registered for this type)
    problems = [
        FieldProblem(
            field=None if item.get("type") == "json_invalid" else _field_of(item.get("loc", ())),
            reason=_reason_of(item),
        )
        for item in error.errors()
    ]
    fields = ", ".join(sorted({p.field or "(request)" for p in problems}))
    problem = ProblemError(
        422,
        "invalid-request",
        "The request is not valid",
        f"fix these fields and send it again: {fields}",
        problems,
    )
    return problem_response(problem, request.url.path)


async def _problem_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)  # noqa: S101 (registered for this type)
    return problem_response(error, request.url.path)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101 (registered for this type)
    titles = {404: "Not found", 405: "Method not allowed"}
    problem = ProblemError(
        error.status_code,
        "not-found" if error.status_code == 404 else f"http-{error.status_code}",
        titles.get(error.status_code, "Request refused"),
        str(error.detail),
        headers=dict(error.headers or {}),
    )
    return problem_response(problem, request.url.path)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    structlog.get_logger(__name__).error(
        "api_unexpected_error", path=request.url.path, error_type=type(error).__name__
    )
    problem = ProblemError(
        500,
        "internal-error",
        "Internal error",
        "the request could not be completed; nothing was changed by this error, and the "
        "operators can find it in the logs by its time",
    )
    return problem_response(problem, request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of the app a problem-details body."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, each a problem-details body."""
    descriptions = {
        400: "Bad request",
        401: "Missing, malformed, expired or revoked credentials",
        403: "Authenticated, but this role or scope may not do this",
        404: "Not found",
        409: "Conflicts with the current state (duplicate id, case closed, already open)",
        422: "A field is invalid, or the core refused the event; ``errors`` names each field",
        503: "Not ready: the database or Temporal cannot be reached",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
