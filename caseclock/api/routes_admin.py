"""Routes for API tokens (admin), definitions (any caller), and health and readiness (public).

``/health`` and ``/ready`` are the only routes without authentication: a load balancer
or an orchestrator calls them, and they say nothing about any case.
"""

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse

from caseclock.api.auth import Admin, Caller, Role
from caseclock.api.problems import FieldProblem, ProblemError, problem_responses
from caseclock.api.schemas import CreateToken, DefinitionSummary, Health, TokenIssued
from caseclock.api.services import Services
from caseclock.db.tokens import TokenView, UnknownTokenError
from caseclock.definition.schema import Definition

tokens_router = APIRouter(prefix="/tokens", tags=["tokens"])
definitions_router = APIRouter(prefix="/definitions", tags=["definitions"])
health_router = APIRouter(tags=["health"])

SCOPED_ROLES = frozenset({Role.MANAGER, Role.PRACTITIONER})


@tokens_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenIssued,
    summary="Issue an API token",
    responses=problem_responses(401, 403, 422),
)
async def create_token(body: CreateToken, principal: Admin, services: Services) -> TokenIssued:
    """Issue a token for a case system or an operator. The token is shown only this once.

    Only its hash is stored; a lost token cannot be recovered, only revoked and replaced.
    Manager and practitioner tokens name a staff code, whose place in the directory
    decides which cases they see.
    """
    if body.role in SCOPED_ROLES and body.staff_code is None:
        raise ProblemError(
            422,
            "invalid-request",
            "The request is not valid",
            f"a {body.role.value} token sees the cases of a member of staff: name them",
            [FieldProblem(field="staff_code", reason=f"is required for the {body.role} role")],
        )
    issued = await services.tokens.issue(
        body.role.value, body.label, body.staff_code, principal.actor
    )
    await services.casework.audit(
        principal.actor, "token.create", None, token_id=issued.view.id, role=body.role.value
    )
    view = issued.view
    return TokenIssued(
        token=issued.token,
        id=view.id,
        role=Role(view.role),
        label=view.label,
        staff_code=view.staff_code,
        created_at=view.created_at,
    )


@tokens_router.get(
    "",
    response_model=list[TokenView],
    summary="List API tokens",
    responses=problem_responses(401, 403),
)
async def list_tokens(principal: Admin, services: Services) -> list[TokenView]:
    """Every token, newest first: ids, roles, labels and use, never the secrets."""
    del principal  # admin only
    return await services.tokens.list_tokens()


@tokens_router.delete(
    "/{token_id}",
    response_model=TokenView,
    summary="Revoke an API token",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_token(
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The token's id.")],
    principal: Admin,
    services: Services,
) -> TokenView:
    """Revoke a token: it is refused from now on. Revoking it again changes nothing."""
    try:
        view = await services.tokens.revoke(token_id, principal.actor)
    except UnknownTokenError as error:
        raise ProblemError(
            404,
            "unknown-token",
            "Unknown token",
            str(error),
            [FieldProblem(field="token_id", reason="no token has this id")],
        ) from error
    await services.casework.audit(principal.actor, "token.revoke", None, token_id=token_id)
    return view


def _summary(key: str, definition: Definition) -> DefinitionSummary:
    return DefinitionSummary(
        key=key,
        id=definition.id,
        version=definition.version,
        title=definition.title,
        description=definition.description,
        events=sorted(definition.events),
        clocks={clock_id: clock.title for clock_id, clock in definition.clocks.items()},
    )


@definitions_router.get(
    "",
    response_model=list[DefinitionSummary],
    summary="List definitions",
    responses=problem_responses(401, 403),
)
async def list_definitions(principal: Caller, services: Services) -> list[DefinitionSummary]:
    """The process definitions a new case may follow, by ``id@version``."""
    del principal  # any authenticated caller
    return [_summary(key, services.definitions[key]) for key in sorted(services.definitions)]


@definitions_router.get(
    "/{key}",
    response_model=Definition,
    summary="Show a definition",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_definition(
    key: Annotated[
        str,
        Path(
            max_length=100,
            description="``id@version``, or an ``id`` alone for its only version.",
            examples=["child-protection@2026.1"],
        ),
    ],
    principal: Caller,
    services: Services,
) -> Definition:
    """A definition in full: tracks, events, clocks (with sources) and escalation ladders."""
    del principal  # any authenticated caller
    if key in services.definitions:
        return services.definitions[key]
    versions = [k for k in services.definitions if k.partition("@")[0] == key]
    if len(versions) == 1:
        return services.definitions[versions[0]]
    reason = (
        f"{key!r} has several versions: {', '.join(sorted(versions))}; name one"
        if versions
        else f"no definition {key!r}; known: {', '.join(sorted(services.definitions))}"
    )
    raise ProblemError(
        404,
        "unknown-definition",
        "Unknown definition",
        reason,
        [FieldProblem(field="key", reason=reason)],
    )


@health_router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """The API process is up (no authentication; says nothing about any case)."""
    return Health(status="ok")


@health_router.get(
    "/ready",
    response_model=Health,
    summary="Readiness",
    responses={503: {"model": Health, "description": "The database or Temporal is unreachable."}},
)
async def ready(services: Services) -> Health | JSONResponse:
    """The database and Temporal both answer (no authentication; 503 if either does not)."""
    checks = await services.ready()
    if all(value == "ok" for value in checks.values()):
        return Health(status="ready", checks=checks)
    body = Health(status="not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=503, media_type="application/json")
