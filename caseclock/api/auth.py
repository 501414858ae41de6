"""Who is calling and what they may see: API tokens, OpenID Connect JWTs, roles and scope.

Every route but ``/health`` and ``/ready`` depends on :func:`authenticated` (directly or
through :func:`require`), and a test enumerates the app's routes to keep it that way.

- A case system presents an API token (``cc_<id>_<secret>``) issued by an admin.
- A person presents an OpenID Connect JWT; its roles claim lists their Caseclock roles and
  its staff claim their staff code.
- ``settings.auth.bootstrap_admin_token``, when set, is an admin token for issuing the first
  real ones.

401 means "who are you?" (no credentials, or credentials that are malformed, expired,
revoked or unknown); 403 means "you may not" (a role or a case outside the caller's scope).
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from caseclock.api.oidc import OidcError, OidcVerifier
from caseclock.api.problems import FieldProblem, ProblemError, problem_response
from caseclock.db.tokens import TokenStore, looks_like_api_token

ACTOR_LENGTH = 64
PRINCIPAL_STATE = "caseclock_principal"


class Role(StrEnum):
    """What a caller may do."""

    INTEGRATION = "integration"  # a case system: starts cases, records events, reads all
    PRACTITIONER = "practitioner"  # a social worker: the cases allocated to them
    MANAGER = "manager"  # the cases of the teams they manage
    LEADER = "leader"  # reads everything, changes nothing but acknowledgements
    ADMIN = "admin"  # everything, and the directory and tokens


# Roles whose scope is every case.
SEES_EVERYTHING = frozenset({Role.INTEGRATION, Role.LEADER, Role.ADMIN})
ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``actor`` is what the audit log records: the staff code of a person or of a token tied
    to one, else ``token:<id>`` or ``oidc:<subject>``; ``via`` says how they signed in.
    """

    actor: str
    roles: frozenset[Role]
    staff_code: str | None
    via: str

    def has(self, *roles: Role) -> bool:
        """Whether the caller holds any of these roles."""
        return bool(self.roles.intersection(roles))


def _bounded(actor: str) -> str:
    """An actor code that fits the audit column; long subjects are shortened by a hash."""
    if len(actor) <= ACTOR_LENGTH:
        return actor
    return f"{actor[:40]}#{hashlib.sha256(actor.encode()).hexdigest()[:16]}"


def unauthorized(detail: str) -> ProblemError:
    """A 401 problem with the challenge a client needs to retry with credentials."""
    return ProblemError(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        [FieldProblem(field="header.Authorization", reason=detail)],
        headers={"WWW-Authenticate": 'Bearer realm="caseclock", error="invalid_token"'},
    )


def forbidden(detail: str) -> ProblemError:
    """A 403 problem: the caller is known but may not do this."""
    return ProblemError(403, "forbidden", "Not allowed", detail)


class Authenticator:
    """Turns a bearer credential into a :class:`Principal`, or refuses it with a 401.

    Args:
        tokens: The API token store.
        oidc: The JWT verifier, or None when OpenID Connect is not configured.
        bootstrap_admin_token: The bootstrap admin token, or empty for none.

    """

    def __init__(
        self, tokens: TokenStore, oidc: OidcVerifier | None, bootstrap_admin_token: str
    ) -> None:
        self._tokens = tokens
        self._oidc = oidc
        self._bootstrap = bootstrap_admin_token
        self._log = structlog.get_logger(__name__)

    async def authenticate(self, credential: str | None) -> Principal:
        """The caller presenting ``credential`` (the bearer value).

        Raises:
            ProblemError: 401, with the reason, for a missing or invalid credential.

        """
        if not credential:
            raise unauthorized("send 'Authorization: Bearer <API token or OpenID Connect JWT>'")
        if self._bootstrap and hmac.compare_digest(credential.encode(), self._bootstrap.encode()):
            return Principal(
                actor="bootstrap-admin",
                roles=frozenset({Role.ADMIN}),
                staff_code=None,
                via="bootstrap",
            )
        if looks_like_api_token(credential):
            token = await self._tokens.verify(credential)
            if token is None:
                self._log.info("api_auth_refused", kind="api_token")
                raise unauthorized("the API token is unknown, revoked or malformed")
            return Principal(
                actor=token.staff_code or f"token:{token.id}",
                roles=frozenset({Role(token.role)}),
                staff_code=token.staff_code,
                via=f"token:{token.id}",
            )
        if self._oidc is None:
            raise unauthorized("the bearer value is not an API token, and OpenID Connect is off")
        try:
            identity = await self._oidc.verify(credential)
        except OidcError as error:
            self._log.info("api_auth_refused", kind="oidc", reason=str(error))
            raise unauthorized(str(error)) from error
        roles = frozenset(Role(role) for role in identity.roles if role in ALL_ROLES)
        return Principal(
            actor=_bounded(identity.staff_code or f"oidc:{identity.subject}"),
            roles=roles,
            staff_code=identity.staff_code,
            via="oidc",
        )


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token (case systems) or an OpenID Connect JWT (people).",
)


def bearer_value(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header.

    Raises:
        ProblemError: 401 if the header uses another scheme.

    """
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    return value.strip()


class AuthenticationMiddleware:
    """Authenticates every request but the public paths, before routing and body parsing.

    So a route added without the ``authenticated`` dependency is still closed, an unknown
    path answers 401 rather than revealing what exists, and a malformed body from an
    unauthenticated caller gets a 401, not a validation error. The principal is left in
    the request state for :func:`authenticated`.

    Args:
        app: The ASGI app to protect.
        authenticator: Turns credentials into principals.
        public_paths: Paths served without authentication.

    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator, public_paths: set[str]) -> None:
        self._app = app
        self._authenticator = authenticator
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an HTTP request, answering 401 itself when that fails."""
        if scope["type"] != "http" or scope["path"] in self._public:
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            credential = bearer_value(headers.get("authorization"))
            principal = await self._authenticator.authenticate(credential)
        except ProblemError as error:
            await problem_response(error, scope["path"])(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self._app(scope, receive, send)


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the authenticated caller, or a 401 problem.

    The middleware has normally authenticated the request already; this dependency also
    declares the bearer scheme in the OpenAPI document.
    """
    principal: Principal | None = getattr(request.state, PRINCIPAL_STATE, None)
    if principal is not None:
        return principal
    authenticator: Authenticator = request.app.state.services.authenticator
    credential = credentials.credentials if credentials else None
    return await authenticator.authenticate(
        credential or bearer_value(request.headers.get("authorization"))
    )


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A FastAPI dependency: the authenticated caller, who must hold one of ``roles``.

    Raises a 403 problem (after authentication's 401) when they hold none of them.
    """

    async def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.has(*roles):
            names = ", ".join(role.value for role in roles)
            raise forbidden(f"this needs one of the roles: {names}")
        return principal

    return dependency


Caller = Annotated[Principal, Depends(authenticated)]
"""Any authenticated caller."""
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
"""An authenticated admin."""
