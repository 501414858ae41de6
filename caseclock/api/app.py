"""The FastAPI application: ``create_app`` wires the routes to a client, sessions and definitions.

The app is built by an entry point (``caseclock.api.main``, or a test) from things that
entry point created; nothing is created at import time. Routes live under ``/api/v1``.
The OpenAPI document is served at ``/api/v1/openapi.json`` to authenticated callers only,
like every route but ``/health`` and ``/ready``; FastAPI's public ``/docs`` pages are off.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from caseclock.api.auth import AuthenticationMiddleware, Authenticator, Caller
from caseclock.api.oidc import JwksCache, OidcVerifier
from caseclock.api.problems import ProblemError, install_problem_handlers, problem_response
from caseclock.api.routes_admin import definitions_router, health_router, tokens_router
from caseclock.api.routes_cases import router as cases_router
from caseclock.api.routes_directory import router as directory_router
from caseclock.api.routes_oversight import router as oversight_router
from caseclock.api.services import ApiServices
from caseclock.casework import Casework
from caseclock.dashboard import mount_dashboard
from caseclock.db.directory_admin import DirectoryAdmin
from caseclock.db.oversight import Oversight
from caseclock.db.read_model import ReadModel
from caseclock.db.tokens import TokenStore
from caseclock.definition.schema import Definition
from caseclock.settings import Settings

API_PREFIX = "/api/v1"
DESCRIPTION = """
Caseclock keeps the statutory clocks of children's social care cases in England and
escalates drift to managers. Case systems start cases and record events; managers read
their teams' cases and acknowledge escalations; administrators keep the directory and
issue API tokens.

**Authentication**: every route but `/health` and `/ready` needs
`Authorization: Bearer <credential>`, either an API token (`cc_...`, issued by an admin with
POST /tokens) or an OpenID Connect JWT from the configured issuer. Roles: integration,
practitioner, manager, leader, admin.

**Errors** are RFC 9457 problem details (`application/problem+json`) whose `errors` list
names each field at fault and the reason. Nothing is half-applied: a refused request
changes nothing.

Only case references and codes appear in URLs, never a name.
"""


def _build_services(
    settings: Settings,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    definitions: dict[str, Definition],
) -> ApiServices:
    read_model = ReadModel(sessions)
    oversight = Oversight(sessions)
    tokens = TokenStore(sessions)
    auth = settings.auth
    oidc = None
    if auth.oidc_issuer and auth.oidc_jwks_url:
        oidc = OidcVerifier(auth, JwksCache(auth.oidc_jwks_url))
    return ApiServices(
        settings=settings,
        client=client,
        sessions=sessions,
        definitions=definitions,
        casework=Casework(client, settings.temporal.task_queue, read_model, oversight, definitions),
        oversight=oversight,
        tokens=tokens,
        directory=DirectoryAdmin(sessions),
        authenticator=Authenticator(tokens, oidc, auth.bootstrap_admin_token.get_secret_value()),
    )


async def _temporal_unavailable(request: Request, error: Exception) -> JSONResponse:
    problem = ProblemError(
        503,
        "temporal-unavailable",
        "The workflow engine cannot be reached",
        f"Temporal did not answer ({type(error).__name__}); nothing was changed, try again",
        headers={"Retry-After": "5"},
    )
    return problem_response(problem, request.url.path)


def create_app(
    settings: Settings,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    definitions: dict[str, Definition],
) -> FastAPI:
    """The HTTP API over a Temporal client, a read-model database and loaded definitions.

    Args:
        settings: The application settings (auth, Temporal task queue).
        client: A Temporal client built with ``caseclock.codec.data_converter``.
        sessions: Sessions for the migrated read-model database.
        definitions: Loaded definitions by ``id@version``.

    Returns:
        The app; serve it with uvicorn (``caseclock api``) or call it in tests.

    """
    app = FastAPI(
        title="Caseclock API",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    services = _build_services(settings, client, sessions, definitions)
    app.state.services = services
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=services.authenticator,
        public_paths={f"{API_PREFIX}/health", f"{API_PREFIX}/ready"},
    )
    # The dashboard serves every path outside /api/ with its own session sign-in; added
    # after the bearer middleware, so it runs before it (caseclock.dashboard.mount).
    mount_dashboard(app)
    install_problem_handlers(app)
    app.add_exception_handler(RPCError, _temporal_unavailable)
    for router in (
        cases_router,
        oversight_router,
        directory_router,
        definitions_router,
        tokens_router,
        health_router,
    ):
        app.include_router(router, prefix=API_PREFIX)

    @app.get(
        f"{API_PREFIX}/openapi.json",
        include_in_schema=False,
        summary="The OpenAPI document",
    )
    async def openapi(principal: Caller) -> dict[str, Any]:
        """This API's OpenAPI document (authenticated, like every route but health)."""
        del principal  # any authenticated caller
        return app.openapi()

    return app
