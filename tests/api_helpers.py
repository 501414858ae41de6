"""Helpers for API tests: the app over a real database and Temporal, tokens, an OIDC issuer.

The OIDC issuer is real enough: an RSA key generated per test module, its public half
served as a JWKS from an HTTP server on loopback, and JWTs signed with PyJWT.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from caseclock.api import create_app
from caseclock.db.tokens import TokenStore
from caseclock.definition.loader import load_definitions
from caseclock.directory import DirectorySeed, load_directory
from caseclock.settings import AuthSettings, Settings
from tests.engine_stack import free_port

DEFINITIONS = load_definitions(Path(__file__).parents[1] / "definitions")
DEFINITION_KEY = next(iter(DEFINITIONS))
ISSUER = "https://idp.test.invalid/realms/caseclock"
AUDIENCE = "caseclock-api"
BOOTSTRAP = "bootstrap-admin-token-for-tests-only"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Issuer:
    """An OIDC issuer for tests: signs JWTs with a key it publishes at ``jwks_url``."""

    jwks_url: str
    key: rsa.RSAPrivateKey
    kid: str = "test-key-1"
    other_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def token(
        self,
        subject: str = "person-1",
        roles: list[str] | None = None,
        staff_code: str | None = None,
        *,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        expires_in: int = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + expires_in,
            "caseclock_roles": roles or [],
        }
        if staff_code:
            claims["staff_code"] = staff_code
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )


@asynccontextmanager
async def oidc_issuer() -> AsyncIterator[Issuer]:
    """Serve a fresh RSA key's public half as a JWKS on loopback."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    app = FastAPI()
    fetches: list[float] = []

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        fetches.append(time.monotonic())
        return {"keys": [{**jwk, "kid": "test-key-1", "use": "sig", "alg": "RS256"}]}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield Issuer(jwks_url=f"http://127.0.0.1:{port}/jwks", key=key)
    finally:
        server.should_exit = True
        await task


def api_settings(base: Settings, jwks_url: str = "") -> Settings:
    """The settings of an API under test: OIDC at the test issuer, a bootstrap token."""
    auth = AuthSettings(
        oidc_issuer=ISSUER if jwks_url else "",
        oidc_audience=AUDIENCE,
        oidc_jwks_url=jwks_url,
        bootstrap_admin_token=SecretStr(BOOTSTRAP),
    )
    return base.model_copy(update={"auth": auth})


@dataclass
class Api:
    """An app under test, an HTTP client on it, and tokens for each role."""

    app: FastAPI
    http: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        """Headers authenticating as the token named ``who`` (e.g. "admin")."""
        return bearer(self.tokens[who])


@asynccontextmanager
async def api_client(
    settings: Settings,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    tokens: dict[str, tuple[str, str | None]],
) -> AsyncIterator[Api]:
    """The app over ASGI, with tokens issued for ``{name: (role, staff_code)}``."""
    store = TokenStore(sessions)
    issued = {
        name: (await store.issue(role, f"test {name}", staff, "tests")).token
        for name, (role, staff) in tokens.items()
    }
    app = create_app(settings, client, sessions, DEFINITIONS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield Api(app=app, http=http, sessions=sessions, tokens=issued)


def two_teams_seed(suffix: str = "") -> DirectorySeed:
    """Service S-A with team A (manager TM-A, worker SW-A) and S-B with team B likewise.

    HOS-A heads service S-A; CV-A covers TM-A's absence (see the scoping tests).
    """
    s = suffix

    def staff(code: str, role: str, team: str | None) -> dict[str, Any]:
        return {
            "code": f"{code}{s}",
            "display_name": f"Person {code}",
            "email": f"{code.lower()}@example.org",
            "role": role,
            "team": f"{team}{s}" if team else None,
        }

    return DirectorySeed.model_validate(
        {
            "services": [
                {"code": f"S-A{s}", "name": "Service A", "head_of_service": f"HOS-A{s}"},
                {"code": f"S-B{s}", "name": "Service B"},
            ],
            "teams": [
                {"code": f"A{s}", "name": "Team A", "service": f"S-A{s}", "manager": f"TM-A{s}"},
                {"code": f"B{s}", "name": "Team B", "service": f"S-B{s}", "manager": f"TM-B{s}"},
            ],
            "staff": [
                staff("TM-A", "team_manager", "A"),
                staff("SW-A", "social_worker", "A"),
                staff("CV-A", "team_manager", None),
                staff("HOS-A", "head_of_service", None),
                staff("TM-B", "team_manager", "B"),
                staff("SW-B", "social_worker", "B"),
            ],
        }
    )


async def load_two_teams(sessions: async_sessionmaker[AsyncSession], suffix: str = "") -> None:
    await load_directory(sessions, two_teams_seed(suffix))


def case_ref() -> str:
    """A case reference no other test uses."""
    return f"API-{uuid.uuid4().hex[:10]}"
