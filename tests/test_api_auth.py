"""API authentication and scoping on real databases (SQLite and PostgreSQL) and Temporal.

Every route is enumerated from the app itself, so a route added later without
authentication fails here. People's JWTs are signed by an RSA key made for the test and
published as a JWKS on loopback.
"""

import base64
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from caseclock.calendar import local_date
from caseclock.db.deliveries import utc_now
from caseclock.db.models import ApiToken, AuditEntry
from caseclock.db.read_model import ReadModel
from caseclock.directory import AbsenceSeed, DirectorySeed, load_directory
from caseclock.settings import DatabaseSettings, Settings
from tests.api_helpers import (
    AUDIENCE,
    BOOTSTRAP,
    ISSUER,
    Api,
    Issuer,
    api_client,
    api_settings,
    bearer,
    case_ref,
    load_two_teams,
    oidc_issuer,
)
from tests.db_fixtures import Database, database, unique

__all__ = ["database"]

PUBLIC = {"/api/v1/health", "/api/v1/ready"}


@dataclass
class World:
    """Two teams (suffix ``s``), a case in each, and the API with tokens and an issuer."""

    api: Api
    issuer: Issuer
    s: str
    case_a: str
    case_b: str

    def person(self, roles: list[str], staff: str | None = None) -> dict[str, str]:
        code = f"{staff}{self.s}" if staff else None
        return bearer(self.issuer.token(f"sub-{staff}", roles, code))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest_asyncio.fixture
async def world(database: Database, local_env: WorkflowEnvironment) -> AsyncIterator[World]:
    s = f"-{unique('x')[2:]}"
    await load_two_teams(database.sessions, s)
    read_model = ReadModel(database.sessions)
    case_a, case_b = case_ref(), case_ref()
    opened = date(2026, 1, 5)
    await read_model.upsert_case(case_a, "child-protection", "2026.1", f"A{s}", f"SW-A{s}", opened)
    await read_model.upsert_case(case_b, "child-protection", "2026.1", f"B{s}", f"SW-B{s}", opened)
    settings = Settings(database=DatabaseSettings(url=database.url))
    async with oidc_issuer() as issuer:
        tokens = {
            "admin": ("admin", None),
            "integration": ("integration", None),
            "leader": ("leader", None),
            "manager_a": ("manager", f"TM-A{s}"),
            "worker_a": ("practitioner", f"SW-A{s}"),
        }
        async with api_client(
            api_settings(settings, issuer.jwks_url), local_env.client, database.sessions, tokens
        ) as api:
            yield World(api, issuer, s, case_a, case_b)


async def audit_rows(database: Database, case_ref: str) -> list[tuple[str, str]]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action)
            .where(AuditEntry.case_ref == case_ref)
            .order_by(AuditEntry.id)
        )
        return [(actor, action) for actor, action in rows]


# Every route ----------------------------------------------------------------------------


def _routes(world: World) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(world.api.app.routes):
        path = route.path or ""
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                # {name} or {name:path} -> a plausible value, so only authentication can refuse.
                found.append((method, re.sub(r"\{[^}]+\}", "X-1", path)))
    return found


async def test_every_route_but_health_and_ready_refuses_a_missing_or_wrong_credential(
    world: World,
) -> None:
    routes = _routes(world)
    assert len(routes) >= 22  # the enumeration itself works
    public = {path for _, path in routes if path in PUBLIC}
    assert public == PUBLIC
    wrong = {
        "missing": {},
        "garbage": bearer("not-a-token"),
        "unknown API token": bearer("cc_0123456789ab_" + "A" * 43),
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "JWT of a stranger": bearer(
            world.issuer.token("x", ["admin"], key=world.issuer.other_key, kid="stranger")
        ),
    }
    for method, path in routes:
        if path in PUBLIC:
            response = await world.api.http.request(method, path)
            assert response.status_code == 200, (method, path, response.text)
            continue
        for name, headers in wrong.items():
            response = await world.api.http.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, name, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            body = response.json()
            assert body["status"] == 401
            assert body["errors"][0]["field"] == "header.Authorization"


# OpenID Connect -------------------------------------------------------------------------


async def test_a_valid_oidc_token_is_accepted_and_bad_ones_refused_with_the_reason(
    world: World,
) -> None:
    http, issuer = world.api.http, world.issuer
    ok = await http.get("/api/v1/tokens", headers=world.person(["admin"], "HOS-A"))
    assert ok.status_code == 200

    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "exp": 9_999_999_999}
    claims["caseclock_roles"] = ["admin"]
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    # The classic confusion attack: HS256 with the issuer's public key as the HMAC secret.
    signing_input = f"{_b64({'alg': 'HS256', 'kid': issuer.kid})}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hmac_with_public_key = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    refused = {
        "expired": (issuer.token(roles=["admin"], expires_in=-120), "expired"),
        "another audience": (issuer.token(roles=["admin"], audience="other"), "audience"),
        "another issuer": (issuer.token(roles=["admin"], issuer="https://evil"), "issuer"),
        "another key, same kid": (
            issuer.token(roles=["admin"], key=issuer.other_key),
            "signature",
        ),
        "unknown kid": (issuer.token(roles=["admin"], kid="nope"), "key"),
        "unsigned": (unsigned, "algorithm"),
        "HMAC": (hmac_with_public_key, "algorithm"),
    }
    for name, (token, reason) in refused.items():
        response = await http.get("/api/v1/tokens", headers=bearer(token))
        assert response.status_code == 401, name
        assert reason in response.json()["detail"], (name, response.json())


async def test_a_person_without_the_role_is_forbidden_not_unauthenticated(world: World) -> None:
    http = world.api.http
    response = await http.get("/api/v1/tokens", headers=world.person(["leader"]))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:caseclock:problem:forbidden"
    nobody = await http.get(f"/api/v1/cases/{world.case_a}", headers=world.person([]))
    assert nobody.status_code == 403


# API tokens -----------------------------------------------------------------------------


async def test_a_token_is_shown_once_stored_hashed_and_refused_once_revoked(
    world: World, database: Database
) -> None:
    http = world.api.http
    created = await http.post(
        "/api/v1/tokens",
        json={"role": "integration", "label": "Mosaic"},
        headers=bearer(BOOTSTRAP),
    )
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["id"]
    assert token.startswith(f"cc_{token_id}_")
    async with database.sessions() as session:
        row = await session.get(ApiToken, token_id)
    assert row is not None
    secret = token.removeprefix(f"cc_{token_id}_")
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str([getattr(row, c.name) for c in ApiToken.__table__.columns])

    listed = await http.get("/api/v1/tokens", headers=world.api.as_("admin"))
    assert secret not in listed.text
    assert token_id in listed.text
    assert (await http.get("/api/v1/definitions", headers=bearer(token))).status_code == 200

    revoked = await http.delete(f"/api/v1/tokens/{token_id}", headers=world.api.as_("admin"))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await http.get("/api/v1/definitions", headers=bearer(token))
    assert refused.status_code == 401
    unknown = await http.delete("/api/v1/tokens/0123456789ab", headers=world.api.as_("admin"))
    assert unknown.status_code == 404
    assert unknown.json()["errors"] == [{"field": "token_id", "reason": "no token has this id"}]


async def test_manager_and_practitioner_tokens_must_name_a_member_of_staff(world: World) -> None:
    response = await world.api.http.post(
        "/api/v1/tokens", json={"role": "manager", "label": "x"}, headers=world.api.as_("admin")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "staff_code"
    forbidden = await world.api.http.post(
        "/api/v1/tokens", json={"role": "admin", "label": "x"}, headers=world.api.as_("leader")
    )
    assert forbidden.status_code == 403


# Scope ----------------------------------------------------------------------------------


async def test_a_manager_reads_their_teams_case_but_not_another_teams_and_is_audited(
    world: World, database: Database
) -> None:
    http, api = world.api.http, world.api
    mine = await http.get(f"/api/v1/cases/{world.case_a}", headers=api.as_("manager_a"))
    assert mine.status_code == 200
    assert mine.json()["case"]["team"] == f"A{world.s}"
    theirs = await http.get(f"/api/v1/cases/{world.case_b}", headers=api.as_("manager_a"))
    assert theirs.status_code == 403
    assert theirs.json()["type"] == "urn:caseclock:problem:forbidden"
    assert await audit_rows(database, world.case_a) == [(f"TM-A{world.s}", "case.read")]
    assert await audit_rows(database, world.case_b) == [(f"TM-A{world.s}", "case.read.denied")]


async def test_scope_follows_the_directory_for_people_and_tokens(
    world: World, database: Database
) -> None:
    http, api, s = world.api.http, world.api, world.s

    async def status(headers: dict[str, str], case: str) -> int:
        return (await http.get(f"/api/v1/cases/{case}", headers=headers)).status_code

    # Head of service A (a manager by role): team A's case, not team B's.
    head = world.person(["manager"], "HOS-A")
    assert (await status(head, world.case_a), await status(head, world.case_b)) == (200, 403)
    # A practitioner: the case allocated to them only.
    assert await status(api.as_("worker_a"), world.case_a) == 200
    assert await status(api.as_("worker_a"), world.case_b) == 403
    # Leaders, admins and case systems see every case.
    for who in ("leader", "admin", "integration"):
        assert await status(api.as_(who), world.case_b) == 200
    # A manager covering TM-A's absence sees team A's cases while it lasts.
    cover = world.person(["manager"], "CV-A")
    assert await status(cover, world.case_a) == 403
    today = local_date(utc_now())
    await load_directory(
        database.sessions,
        DirectorySeed.model_construct(
            services=[],
            teams=[],
            staff=[],
            absences=[
                AbsenceSeed(
                    staff=f"TM-A{s}",
                    starts_on=today - timedelta(days=1),
                    ends_on=today + timedelta(days=1),
                    cover=f"CV-A{s}",
                )
            ],
        ),
    )
    assert await status(cover, world.case_a) == 200
    assert await status(cover, world.case_b) == 403


async def test_unknown_case_is_404_whoever_asks(world: World) -> None:
    response = await world.api.http.get("/api/v1/cases/NO-0000", headers=world.api.as_("admin"))
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"field": "case_ref", "reason": "no case has this reference"}
    ]
    bad_ref = await world.api.http.get("/api/v1/cases/NoDigits", headers=world.api.as_("admin"))
    assert bad_ref.status_code == 422
    assert bad_ref.json()["errors"][0]["field"] == "path.case_ref"
    assert "never a name" in bad_ref.json()["errors"][0]["reason"]


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready"])
async def test_health_and_ready_answer_without_credentials(world: World, path: str) -> None:
    response = await world.api.http.get(path)
    assert response.status_code == 200
    if path.endswith("ready"):
        assert response.json()["checks"] == {"database": "ok", "temporal": "ok"}
